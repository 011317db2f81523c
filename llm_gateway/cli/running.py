"""The running gateway as the CLI sees it: its ``GET /health`` answer.

Theory of operation: the CLI finds the gateway at the address its config
names (``server.host``/``server.port``, the loopback side of a wildcard
address) or at ``--url``. ``/health`` says which config file the gateway
serves (``config_path``) and a digest of the bytes it has loaded
(``config_digest``). After a command changed the file, ``wait_for_load``
polls ``/health`` until that digest is the digest of the file as it is now,
so the command returns once the gateway uses the change (a later write by
someone else moves the target, which is still "at least this change").
The wait is bounded (``LOAD_WAIT``); a gateway that is not running, serves
another file, or does not catch up in time gets a one-line message on
stderr, and the command still succeeds: the change is on disk.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config.network import ServerConfig
from ..errors import ConfigError
from .context import CliError, Context

__all__ = [
    "LOAD_WAIT",
    "fetch_health",
    "local_url",
    "serves_file",
    "show_address",
    "wait_for_load",
]

#: longest wait for a running gateway to load a change the CLI made (seconds)
LOAD_WAIT = 3.0
#: one ``/health`` request while waiting (seconds)
PROBE_TIMEOUT = 1.0
#: pause between two ``/health`` requests while waiting (seconds)
POLL_INTERVAL = 0.05


def local_url(server: ServerConfig) -> str:
    """Where a client on this host reaches the gateway ``server`` configures."""
    host = server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def show_address(url: str) -> str:
    """``http://127.0.0.1:3847`` -> ``127.0.0.1:3847`` (as messages show it)."""
    parts = urlsplit(url)
    return parts.netloc + parts.path.rstrip("/") if parts.scheme == "http" else url


def check_url(url: str) -> str:
    """A usable gateway URL (``http(s)://host[:port][/prefix]``), or a CliError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"--url must look like http://127.0.0.1:3847, not {url!r}")
    if parts.query or parts.fragment:
        raise CliError("--url takes no query or fragment")
    return url.rstrip("/")


def fetch_health(url: str, timeout: float) -> dict[str, Any] | None:
    """The ``/health`` JSON of the gateway at ``url``; None when none answers."""
    parts = urlsplit(url)
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    try:
        conn = connection_type(parts.hostname or "", parts.port, timeout=timeout)
    except ValueError:  # a port that is not a number
        return None
    try:
        conn.request("GET", parts.path.rstrip("/") + "/health")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data = json.loads(body)
        return data if isinstance(data, dict) else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def serves_file(health: dict[str, Any], path: Path) -> bool | None:
    """Whether the gateway serves the config file at ``path`` (None: it does not say)."""
    served = health.get("config_path")
    if not isinstance(served, str) or not served:
        return None
    if os.path.realpath(served) == os.path.realpath(path):
        return True
    try:
        return os.path.samefile(served, path)
    except OSError:
        return False


def wait_for_load(
    ctx: Context,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """After a change to the config file: return once the running gateway has it."""
    try:
        url = local_url(ctx.store.load(create=False).server)
    except ConfigError:
        return  # the command that wrote it reports problems with the file itself
    where = show_address(url)
    deadline = clock() + LOAD_WAIT
    health = fetch_health(url, PROBE_TIMEOUT)
    if health is None:
        ctx.err(f"note: the gateway at {where} is not running; it uses the change when it starts")
        return
    same = serves_file(health, ctx.store.path)
    if same is None:
        ctx.err(f"note: the gateway at {where} does not say which configuration it serves")
        return
    if not same:
        ctx.err(
            f"note: the gateway at {where} serves another config file ({health['config_path']});"
            f" this change is in {ctx.store.path}"
        )
        return
    while health.get("config_digest") != ctx.store.current_digest():
        if clock() >= deadline:
            problem = health.get("config")
            why = f"; it reports {problem}" if problem not in (None, "ok") else ""
            ctx.err(
                f"warning: the gateway at {where} did not load the change"
                f" within {LOAD_WAIT:g} s{why}"
            )
            return
        sleep(POLL_INTERVAL)
        polled = fetch_health(url, PROBE_TIMEOUT)
        if polled is None:
            ctx.err(f"note: the gateway at {where} stopped; it uses the change when it starts")
            return
        health = polled
