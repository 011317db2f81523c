"""The connection to the Redis (or Valkey) server that gateway instances share.

Theory of operation: each gateway process holds one ``RedisLink``, a
redis-py asyncio client with its own timeouts and no retries of its own. The
link is either *up* or *down*, and it changes state in one place
(``_went_down``, ``_came_back``):

* up: ``call`` runs a command, bounded by ``connect_timeout`` plus
  ``command_timeout`` whatever the client does. A connection error, a timeout
  or a Redis error turns the link down and raises ``StateUnavailable``.
* down: ``call`` raises ``StateUnavailable`` at once, without touching the
  network, so a dead Redis costs a request nothing beyond the one command
  that found it dead; callers fall back to this host's own state. A
  background task pings Redis after ``retry_interval`` seconds, doubling the
  wait up to ``retry_max``; the first answer turns the link up again.

Each change is logged once (warning when down, info when back) with the
reason, never per request; ``report`` gives ``/health`` the backend, whether
Redis is reachable and since when it is not. The password (in the URL or a
field) appears in no log line or report: the address is shown masked.

``redis`` is imported only here and only when the backend is configured: it
is an optional extra (``llm-gateway[redis]``, or ``build_zipapp.py --with
redis``); without it ``load_client`` raises a one-line ``ConfigError``
saying how to get it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar

from ..config.schema import StateConfig
from ..errors import ConfigError, StateUnavailable

__all__ = ["MISSING_PACKAGE", "LinkState", "RedisLink", "load_redis", "masked_address"]

log = logging.getLogger("llm_gateway.state")

T = TypeVar("T")

MISSING_PACKAGE = (
    "state.backend redis needs the redis package: pip install 'llm-gateway[redis]', "
    "or build the zipapp with: python3 build_zipapp.py --with redis"
)


class LinkState(enum.Enum):
    UP = "up"
    DOWN = "down"


def load_redis() -> ModuleType:
    """``redis.asyncio``, or a ``ConfigError`` saying how to install it."""
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] == "redis":
            raise ConfigError(MISSING_PACKAGE) from None
        # redis-py is there but not what it imports (async-timeout before Python 3.11.3)
        raise ConfigError(
            f"state.backend redis: the redis package needs {exc.name}, which is missing: "
            "pip install 'llm-gateway[redis]', or build the zipapp with: "
            f"python3 build_zipapp.py --with redis --with {exc.name.replace('_', '-')}-VERSION-py3-none-any.whl"
        ) from None


def masked_address(url: str) -> str:
    """``redis://user:secret@host:6379/0`` -> ``redis://host:6379/0``."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


class RedisLink:
    """One process's connection to the shared Redis; see the module docstring."""

    def __init__(
        self,
        settings: StateConfig,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ):
        assert settings.url is not None
        self.settings = settings
        self.address = masked_address(settings.url)
        self.client = client if client is not None else _client(settings)
        self.state = LinkState.UP
        self._clock = clock
        self._down_since: float | None = None
        self._reason = ""
        self._wait = settings.retry_interval
        self._recovery: asyncio.Task[None] | None = None
        #: told when the link comes back up (the OAuth share re-reads, say)
        self.on_recovered: list[Callable[[], None]] = []

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP

    @property
    def bound(self) -> float:
        """The longest one command may take before Redis counts as unreachable."""
        return self.settings.connect_timeout + self.settings.command_timeout

    async def call(self, command: Callable[[Any], Awaitable[T]]) -> T:
        """``command(client)``, or ``StateUnavailable`` when Redis is down or fails now."""
        if self.state is LinkState.DOWN:
            raise StateUnavailable(f"Redis at {self.address} is unreachable: {self._reason}")
        try:
            return await self._bounded(command)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # redis-py's errors, OSError, TimeoutError: one edge
            self._went_down(_describe(exc))
            raise StateUnavailable(
                f"Redis at {self.address} is unreachable: {self._reason}"
            ) from None

    async def _bounded(self, command: Callable[[Any], Awaitable[T]]) -> T:
        """``command(client)`` cancelled after ``bound`` seconds, as ``TimeoutError``.

        A timer that cancels this task, rather than ``asyncio.wait_for``, which
        before Python 3.12 runs the command in a task of its own (a cost on
        every request)."""
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.bound, expire)
        try:
            return await command(self.client)
        except asyncio.CancelledError:
            if not expired:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            raise TimeoutError() from None
        finally:
            timer.cancel()

    async def check(self) -> bool:
        """Ping now (at start, for ``status``); True when Redis answered."""
        if self.state is LinkState.DOWN:
            return await self._ping()
        try:
            await self.call(lambda client: client.ping())
        except StateUnavailable:
            return False
        return True

    def report(self) -> dict[str, object]:
        body: dict[str, object] = {
            "backend": "redis",
            "address": self.address,
            "reachable": self.up,
        }
        if self._down_since is not None:
            body["unreachable_since"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._down_since)
            )
            body["error"] = self._reason
            body["degraded"] = (
                "rate limits enforce this instance's share of each limit; account health "
                "is this host's own; OAuth refreshes use this host's file lock"
            )
        return body

    async def aclose(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        try:
            await asyncio.wait_for(self.client.aclose(), self.bound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # closing a dead connection may fail; nothing is lost
            log.debug("closing the Redis connection failed", extra={"error": _describe(exc)})

    # -- the two transitions -------------------------------------------------------

    def _went_down(self, reason: str) -> None:
        if self.state is LinkState.DOWN:
            return
        self.state, self._reason = LinkState.DOWN, reason
        self._down_since = self._clock()
        self._wait = self.settings.retry_interval
        log.warning(
            "shared state unreachable: serving with this instance's own state until it returns",
            extra={"address": self.address, "error": reason},
        )
        self._recovery = asyncio.ensure_future(self._recover())

    def _came_back(self) -> None:
        self.state, self._reason, self._down_since = LinkState.UP, "", None
        log.info("shared state reachable again", extra={"address": self.address})
        for listener in self.on_recovered:
            listener()

    async def _recover(self) -> None:
        while self.state is LinkState.DOWN:
            await asyncio.sleep(self._wait)
            if await self._ping():
                self._came_back()
                return
            self._wait = min(self._wait * 2, self.settings.retry_max)

    async def _ping(self) -> bool:
        try:
            await asyncio.wait_for(self.client.ping(), self.bound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # still down: keep the first reason unless it changed
            self._reason = _describe(exc)
            return False
        return True


def _client(settings: StateConfig) -> Any:
    module = load_redis()
    retry = importlib.import_module("redis.asyncio.retry")
    backoff = importlib.import_module("redis.backoff")
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        # every command is bounded by the link's own timer (``_bounded``): no second,
        # per-read timeout inside the client
        "socket_timeout": None,
        # the link decides when to try again: no retries inside the client
        "retry": retry.Retry(backoff.NoBackoff(), 0),
        "retry_on_timeout": False,
        "client_name": "llm-gateway",
    }
    if settings.username is not None:
        options["username"] = settings.username
    if settings.password is not None:
        options["password"] = settings.password
    if settings.ca_file is not None and (settings.url or "").startswith("rediss://"):
        options["ssl_ca_certs"] = settings.ca_file
    return module.Redis.from_url(settings.url, **options)


def _describe(exc: BaseException) -> str:
    """A reason for the log: the exception's kind and text, never the URL's password."""
    text = str(exc).strip()
    kind = type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not text:
        return "no answer in time"
    return f"{kind}: {text}" if text else kind
