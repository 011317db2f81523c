"""The application: routes a ``Request`` to its handler and renders errors.

Theory of operation: one explicit route table maps (method, path) to an async
handler. Handlers raise ``GatewayError`` for anything a client should hear
about; this module renders it in the client's own format (Anthropic shape for
``/v1/messages`` paths, OpenAI shape elsewhere). The gateway's changing state
(configuration, health) lives in ``GatewayState``, which the runtime swaps on
reload; handlers read it per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import __version__
from ..config.schema import Config
from ..errors import GatewayError, NotFound
from .messages import Request, Response, json_response

__all__ = ["GatewayApp", "GatewayState", "error_response"]

log = logging.getLogger("llm_gateway.access")

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class GatewayState:
    """What a running gateway knows; ``config`` is replaced whole on reload."""

    config: Config
    started_at: float = field(default_factory=time.monotonic)


def _is_anthropic_path(path: str) -> bool:
    return path.startswith("/v1/messages")


def error_response(request: Request | None, error: GatewayError) -> Response:
    """``error`` in the client's format, with its status and extra headers."""
    headers = list(getattr(error, "headers", []) or [])
    if request is not None and _is_anthropic_path(request.path):
        payload: object = {
            "type": "error",
            "error": {"type": error.kind, "message": error.message},
        }
    else:
        payload = {
            "error": {
                "message": error.message,
                "type": error.kind,
                "param": error.param,
                "code": None,
            }
        }
    return json_response(error.status, payload, headers)


class GatewayApp:
    def __init__(self, state: GatewayState):
        self.state = state
        self.routes: dict[tuple[str, str], Handler] = {("GET", "/health"): self.health}

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    async def __call__(self, request: Request) -> Response:
        start = time.perf_counter()
        handler = self.routes.get((request.method, request.path))
        try:
            if handler is None:
                raise self._no_route(request)
            response = await handler(request)
        except GatewayError as error:
            response = error_response(request, error)
        if request.path != "/health":
            log.info(
                "request",
                extra={
                    "request_id": request.request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "latency_ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
        return response

    def _no_route(self, request: Request) -> GatewayError:
        methods = sorted(m for m, p in self.routes if p == request.path)
        if methods:
            return GatewayError(
                f"method {request.method} is not allowed on {request.path}; use {', '.join(methods)}",
                status=405,
            )
        return NotFound(f"no such endpoint: {request.method} {request.path}")

    async def health(self, request: Request) -> Response:
        config = self.state.config
        enabled = [a for a in config.upstream_accounts if a.enabled]
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.state.started_at, 1),
            "upstreams": {"total": len(config.upstream_accounts), "enabled": len(enabled)},
        }
        return json_response(200, body, [("cache-control", "no-store")])
