"""The application: routes a ``Request`` to its handler and renders errors.

Theory of operation: one explicit route table maps (method, path) to an async
handler; paths with a variable segment (``/v1beta/models/{model}:generateContent``)
are ``PathPattern`` routes, tried in order when no exact path matches. CORS
preflights are answered first, before any authentication. Handlers raise
``GatewayError`` for anything a client should hear about; this module renders
it in the client's own format (Anthropic's for ``/v1/messages`` paths and for
``/v1/models`` asked with ``anthropic-version``, Google's for the Gemini API's
``/v1beta/`` paths, OpenAI's elsewhere) through the format registry. Errors the server raises before a
request reaches the application (malformed HTTP, 408, 413, 431) are rendered
the same way, from the path alone (``error_for_status``). The gateway's changing
state (configuration, account health) lives in ``GatewayState``; the runtime
replaces its ``config`` on reload and handlers read it per request.

``/health`` (no authentication, no secrets) says what this process serves:
its version and start time, the config file, whether the file as it is now
loaded (``config``) and a digest of the bytes in force (the CLI polls it after
a change), the counts of keys and accounts, and settings waiting for a
restart; per-account state and the pid only to loopback callers.

Access log: one structured line per request (but ``/health`` and the admin
page's reads, which pollers repeat every few seconds), written when the response is
complete (for a stream, when it ends), with what the handler noted in
``request.notes`` (key id, model, account, attempts, tokens...). At the same
moment every ``finished`` hook is called with the request, the status and the
duration (the usage ledger and the metrics, ``pipeline.accounting``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .. import __version__
from ..config.schema import Config
from ..errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from ..formats.error_relay import kind_for_status
from ..formats.registry import FORMATS
from ..routing.health import HealthTracker
from . import cors
from .messages import Request, Response, json_response
from .paths import PathPattern

__all__ = ["GatewayApp", "GatewayState", "error_for_status", "error_response"]

log = logging.getLogger("llm_gateway.access")

Handler = Callable[[Request], Awaitable[Response]]
#: called once per request when its response is complete: (request, status, seconds)
Finished = Callable[[Request, int, float], None]
_LOOPBACK = ("127.", "::1", "[::1]")
#: probes (liveness checks, clients looking for a server) are not access-logged
_UNLOGGED = frozenset({"/health", "/"})
#: reads that write no access line (the admin page's; its writes are logged)
_UNLOGGED_READS = "/admin"


@dataclass
class GatewayState:
    """What a running gateway knows; ``config`` is replaced whole on reload."""

    config: Config
    health: HealthTracker = field(default_factory=HealthTracker)
    started_at: float = field(default_factory=time.monotonic)
    #: wall-clock start, for ``/health``'s ``started_at``
    started_wall: float = field(default_factory=time.time)
    #: the file the configuration comes from, and the digest of the bytes in force
    config_path: str = ""
    config_digest: str = ""
    #: why the file as it is now is not in force (None: it is)
    config_error: str | None = None
    #: changed settings that are read only at start
    restart_needed: tuple[str, ...] = ()
    #: the shared-state backend and whether it is reachable (``state/backends.py``)
    shared_state: Callable[[], dict[str, object]] = lambda: {"backend": "local"}


#: path prefixes whose errors are in another format than OpenAI's
_FORMAT_BY_PREFIX = (
    ("/v1/messages", "anthropic-messages"),
    ("/v1beta/", "gemini-generate-content"),
)


def _client_format(path: str, anthropic_version: bool = False) -> str:
    if anthropic_version and path == "/v1/models":
        return "anthropic-messages"
    for prefix, name in _FORMAT_BY_PREFIX:
        if path.startswith(prefix):
            return name
    return "openai-chat"


def _render(client_format: str, error: GatewayError) -> Response:
    payload = FORMATS[client_format].render_error(
        error.status, error.kind, error.message, error.param
    )
    return json_response(error.status, payload, list(error.headers))


def error_response(request: Request, error: GatewayError) -> Response:
    """``error`` in the client's format, with its status and extra headers."""
    anthropic_version = request.header("anthropic-version") is not None
    return _render(_client_format(request.path, anthropic_version), error)


def error_for_status(status: int, message: str, path: str) -> Response:
    """An error the HTTP server raises itself (``server.tcp.ErrorRenderer``),
    with the kind its status implies, in the format ``path`` implies."""
    error = GatewayError(message, status=status)
    error.kind = kind_for_status(status)
    return _render(_client_format(path), error)


def _asks_for_websocket(headers: Mapping[str, str]) -> bool:
    """A WebSocket upgrade (Codex tries one on ``/v1/responses`` first). It is refused
    at once with 426, the status on which Codex falls back to HTTP without retrying."""
    return "websocket" in headers.get("upgrade", "").lower()


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


class _LoggedBody:
    """Wraps a streamed body so the access line is written when it ends."""

    def __init__(self, body: AsyncIterable[bytes], done: Callable[[], None]):
        self.body = body
        self.done = done
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.body.__aiter__()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self.done()


class GatewayApp:
    def __init__(self, state: GatewayState):
        self.state = state
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/health"): self.health,
            ("GET", "/"): self.root,
            ("HEAD", "/"): self.root,
        }
        #: (method, path prefix) -> handler, for paths that end in an id
        self.prefix_routes: dict[tuple[str, str], Handler] = {}
        self.finished: list[Finished] = []
        #: routes with a variable segment, tried in order after the exact paths
        self.patterns: list[tuple[str, PathPattern, Handler]] = []

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def route_prefix(self, method: str, prefix: str, handler: Handler) -> None:
        """``handler`` serves ``method`` on every path that is ``prefix`` plus one
        non-empty segment (exact routes come first)."""
        self.prefix_routes[(method, prefix)] = handler

    def route_pattern(self, method: str, pattern: PathPattern, handler: Handler) -> None:
        """Route ``method`` on every path ``pattern`` matches (its handler reads the
        variable segment from ``request.path`` with the same pattern)."""
        self.patterns.append((method, pattern, handler))

    def _lookup(self, method: str, path: str) -> Handler | None:
        handler = self.routes.get((method, path))
        if handler is not None:
            return handler
        for (route_method, prefix), candidate in self.prefix_routes.items():
            rest = path[len(prefix) :]
            if route_method == method and path.startswith(prefix) and rest and "/" not in rest:
                return candidate
        for known, pattern, candidate in self.patterns:
            if known == method and pattern.match(path) is not None:
                return candidate
        return None

    async def __call__(self, request: Request) -> Response:
        start = time.perf_counter()
        origins = self.state.config.server.cors_origins
        origin = request.header("origin")
        allowed_origin = origin if cors.origin_allowed(origin, origins) else None
        if cors.is_preflight(request.method, request.header_map):
            return self._preflight(request, allowed_origin)
        handler = self._lookup(request.method, request.path)
        try:
            if _asks_for_websocket(request.header_map):
                raise InvalidRequest(
                    "this gateway does not serve WebSocket connections; send the request over HTTP",
                    status=426,
                )
            if handler is None:
                raise self._no_route(request)
            response = await handler(request)
        except GatewayError as error:
            request.notes.setdefault("error", type(error).__name__)
            response = error_response(request, error)
        if allowed_origin is not None:
            response.headers.extend(cors.response_headers(allowed_origin))
        logging_on = log.isEnabledFor(logging.INFO)
        if request.path in _UNLOGGED or not (logging_on or self.finished):
            return response
        if request.method == "GET" and request.path.startswith(_UNLOGGED_READS):
            return response  # the admin page polls every few seconds
        status = response.status
        if isinstance(response.body, bytes):
            self._done(request, status, start, logging_on)
        else:
            # the hook must not hold ``response`` (which holds the hook): such a
            # cycle would keep every stream's objects until a garbage collection
            response.body = _LoggedBody(
                response.body, lambda: self._done(request, status, start, logging_on)
            )
        return response

    def _done(self, request: Request, status: int, start: float, logging_on: bool) -> None:
        if self.finished:
            duration = time.perf_counter() - start
            for hook in self.finished:
                hook(request, status, duration)
        if logging_on:
            self._log(request, status, start)

    def _preflight(self, request: Request, origin: str | None) -> Response:
        headers = cors.preflight_headers(origin, request.header_map) if origin else None
        if headers is None:
            return error_response(
                request,
                PermissionDenied("CORS preflight refused for this origin or request"),
            )
        return Response(204, headers, b"")

    def _log(self, request: Request, status: int, start: float) -> None:
        extra: dict[str, object] = {
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "status": status,
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        }
        extra.update(request.notes)
        log.info("request", extra=extra)

    def _no_route(self, request: Request) -> GatewayError:
        methods = sorted(
            {m for m, p in self.routes if p == request.path}
            | {m for m, pattern, _ in self.patterns if pattern.match(request.path) is not None}
        )
        if methods:
            return InvalidRequest(
                f"method {request.method} is not allowed on {request.path}; use {', '.join(methods)}",
                status=405,
                headers=[("allow", ", ".join(methods))],
            )
        return NotFound(f"no such endpoint: {request.method} {request.path}")

    async def root(self, request: Request) -> Response:
        """What answers here, for clients that probe ``/`` (Claude Code sends ``HEAD /``)."""
        body = {"name": "llm-gateway", "version": __version__, "health": "/health"}
        return json_response(200, body, [("cache-control", "no-store")])

    async def health(self, request: Request) -> Response:
        """Liveness and a summary; per-account detail only for loopback callers."""
        config = self.state.config
        now = time.monotonic()
        enabled = [a for a in config.upstream_accounts if a.enabled]
        available = [a for a in enabled if self.state.health.available(a.id, now)]
        state = self.state
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "started_at": _utc(state.started_wall),
            "uptime_s": round(now - state.started_at, 1),
            "config": "ok" if state.config_error is None else f"error: {state.config_error}",
            "config_path": state.config_path,
            "config_digest": state.config_digest,
            "restart_needed": list(state.restart_needed),
            "state": state.shared_state(),
            "gateway_keys": {
                "total": len(config.gateway_keys),
                "enabled": sum(1 for k in config.gateway_keys if k.enabled),
            },
            "upstreams": {
                "total": len(config.upstream_accounts),
                "enabled": len(enabled),
                "available": len(available),
            },
        }
        if request.client.startswith(_LOOPBACK):
            body["pid"] = os.getpid()
            body["accounts"] = {
                a.id: self._account_health(a.id, a.enabled, now) for a in config.upstream_accounts
            }
        return json_response(200, body, [("cache-control", "no-store")])

    def _account_health(self, account_id: str, enabled: bool, now: float) -> dict[str, object]:
        snap = self.state.health.snapshot(account_id, now)
        if not enabled:
            state = "disabled"
        elif snap.auth_error:
            state = "credentials failing"
        elif snap.cooldown_until is not None and snap.cooldown_until > now:
            state = f"rate limited ({round(snap.cooldown_until - now)} s)"
        elif not snap.available:
            state = f"circuit {snap.state.value}"
        else:
            state = "healthy" if snap.state.value == "closed" else f"circuit {snap.state.value}"
        return {
            "state": state,
            "circuit": snap.state.value,
            "consecutive_failures": snap.consecutive_failures,
            "in_flight": snap.in_flight,
            "latency_ms": round(snap.latency_ewma * 1000, 1) if snap.latency_ewma else None,
            "last_error": snap.last_error.value if snap.last_error else None,
            "auth_error": snap.auth_error,
            "successes": snap.total_successes,
            "failures": snap.total_failures,
            "rate_limited": snap.total_rate_limited,
        }
