"""Is the address already served? Asked once at start, before binding.

Theory of operation: ``--workers`` binds with ``SO_REUSEPORT``, which lets
any process of the same user bind a port that is already listened on, so a
second gateway (or a gateway and an unrelated server) would silently share
the port and split its connections. Binding cannot tell a sibling worker
from a stranger, so before any bind ``occupant`` connects to the address: if
nothing answers, the port is free (a race with another starting server
remains possible, as with any check before a bind). If something does, it is
asked ``GET /health``; a gateway's answer names it (and its pid, which a
gateway tells loopback callers), anything else is "another program". Either
way the caller refuses to start.

A wildcard address is probed through loopback. Plain blocking sockets with a
short timeout: this runs before the event loop exists.
"""

from __future__ import annotations

import http.client
import json

__all__ = ["occupant"]

#: the longest a start-up waits for whatever holds the port to answer
PROBE_TIMEOUT = 3.0

_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def occupant(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> str | None:
    """What already listens on ``host:port``, in words; None when nothing does."""
    if port == 0:
        return None  # the system picks a free port
    target = _WILDCARDS.get(host, host)
    address = f"[{host}]:{port}" if ":" in host else f"{host or '0.0.0.0'}:{port}"
    connection = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        connection.connect()
    except OSError:
        return None  # refused (nothing listens) or unreachable: binding will tell
    try:
        connection.request("GET", "/health", headers={"connection": "close"})
        response = connection.getresponse()
        answer = json.loads(response.read(1 << 16))
    except (OSError, http.client.HTTPException, ValueError):
        return f"another program already listens on {address}"
    finally:
        connection.close()
    if not isinstance(answer, dict) or "version" not in answer or "status" not in answer:
        return f"another program already listens on {address}"
    pid = answer.get("pid")
    return f"a gateway already listens on {address}" + (
        f" (pid {pid})" if isinstance(pid, int) else ""
    )
