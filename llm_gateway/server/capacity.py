"""How many connections the gateway can hold, sized from the open-file limit.

Theory of operation: a proxied request holds two file descriptors for its
whole life, the client's connection and the upstream connection behind it,
and an LLM stream lives for seconds to minutes (an agent's, much longer). A
fixed connection cap either refuses streams the machine could carry or lets
the process run out of descriptors, so the defaults follow ``RLIMIT_NOFILE``:

* at start, ``raise_open_file_limit`` lifts the soft limit to the hard one
  (the only I/O here; forked workers inherit it);
* ``plan`` (pure) sizes the limits left at ``auto`` in the configuration:
  ``server.max_connections`` and ``proxy.max_connections_per_upstream`` are
  both ``(open files - RESERVED_FILES) // 2``, so every connection the server
  accepts can have its upstream connection, to one upstream or spread over
  many. A number set in the configuration is used as it is.

When the process still runs out (other upstreams' idle connections, a lower
hard limit), connecting upstream fails with ``LocalResourceError``, which is
the gateway's own limit and never counted against the account.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from ..config.network import ProxyConfig, ServerConfig

__all__ = [
    "FILES_PER_CONNECTION",
    "RESERVED_FILES",
    "Capacity",
    "OpenFiles",
    "connections_for",
    "describe",
    "open_file_limit",
    "overcommitted",
    "plan",
    "raise_open_file_limit",
]

#: descriptors kept for everything that is not a connection: listening sockets,
#: the event loop's own, log, config and lock files, resolver sockets
RESERVED_FILES = 64
#: a client connection and its upstream connection
FILES_PER_CONNECTION = 2
#: what an unlimited (or unknowable) open-file limit is sized as
_UNLIMITED_AS = 1 << 20


@dataclass(frozen=True, slots=True)
class OpenFiles:
    """The open-file limit in force (``soft``) and the one found at start."""

    soft: int
    hard: int
    before: int

    @property
    def raised(self) -> bool:
        return self.soft > self.before


@dataclass(frozen=True, slots=True)
class Capacity:
    """The connection limits in force."""

    max_connections: int
    per_upstream: int
    #: what the open-file limit allows (what ``auto`` became)
    allowed: int


def connections_for(open_files: int) -> int:
    """Concurrent proxied connections ``open_files`` descriptors allow (at least 1)."""
    return max(1, (open_files - RESERVED_FILES) // FILES_PER_CONNECTION)


def plan(open_files: int, server: ServerConfig, proxy: ProxyConfig) -> Capacity:
    """The limits for a process with ``open_files`` descriptors; ``auto`` is None."""
    allowed = connections_for(open_files)
    return Capacity(
        max_connections=allowed if server.max_connections is None else server.max_connections,
        per_upstream=(
            allowed
            if proxy.max_connections_per_upstream is None
            else proxy.max_connections_per_upstream
        ),
        allowed=allowed,
    )


def _finite(limit: int) -> int:
    return _UNLIMITED_AS if limit == resource.RLIM_INFINITY or limit < 0 else limit


def open_file_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` of this process."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _finite(soft)


def raise_open_file_limit() -> OpenFiles:
    """Lift the soft open-file limit to the hard limit (or as near as the system allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = _finite(soft)
    targets = [hard] if hard != resource.RLIM_INFINITY else [_UNLIMITED_AS, 10240]
    for target in targets:
        if target != resource.RLIM_INFINITY and target <= before:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. above the kernel's own maximum
            continue
        return OpenFiles(soft=_finite(target), hard=_finite(hard), before=before)
    return OpenFiles(soft=before, hard=_finite(hard), before=before)


def describe(files: OpenFiles, capacity: Capacity) -> str:
    """The start-up log line: the limit, and the connections it allows."""
    if files.raised:
        limit = f"open-file limit raised from {files.before} to {files.soft}"
    else:
        limit = f"open-file limit {files.soft}"
    return (
        f"{limit}: room for {capacity.allowed} concurrent client connections, "
        "each with its upstream connection"
    )


def overcommitted(capacity: Capacity) -> list[str]:
    """The configured limits that exceed what the open-file limit allows."""
    return [
        f"{name} is {value}, more than the open-file limit allows ({capacity.allowed})"
        for name, value in (
            ("server.max_connections", capacity.max_connections),
            ("proxy.max_connections_per_upstream", capacity.per_upstream),
        )
        if value > capacity.allowed
    ]
