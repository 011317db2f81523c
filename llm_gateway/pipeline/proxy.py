"""The inference request path, from a client's request to its response.

Theory of operation, one request:

1. *Check.* Authenticate the gateway key, parse the JSON body once, read the
   model and the stream flag, check the key may use that model.
2. *Route.* The candidates are the enabled accounts whose ``models`` patterns
   match; none gives 404 naming the models that exist.
3. *Prepare* per candidate (``exchange.prepare``): the provider says which
   wire format it speaks; the same format as the client's is passthrough (the
   body as sent, only the model renamed when a ``model_map`` says so), another
   format converts through the unified representation.
4. *Send* through the connection pool. A failure before any byte reached the
   client (connect error, timeout, 5xx, 429, 529) moves on to the next
   candidate; a client error (4xx) is relayed at once in the client's format.
5. *Relay.* Non-streaming bodies are read whole and converted back; streams
   flow through a ``StreamPipe`` chunk by chunk, pulled by the server's writer
   so that a slow client slows the upstream read. The client always sees the
   model name it asked for.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..config.schema import Config, UpstreamAccount
from ..errors import GatewayError, InvalidRequest, NotFound, UpstreamError
from ..providers.base import Operation
from ..providers.registry import get_provider
from ..routing.selection import matches
from ..server.app import GatewayApp, GatewayState
from ..server.messages import Request, Response, json_response
from ..upstream.pool import ConnectionPool
from ..upstream.timeouts import Timeouts
from .auth import authenticate, authorize
from .catalog import list_models
from .credentials import Credentials
from .endpoints import ENDPOINTS, Endpoint
from .exchange import prepare, relay_body, relay_error
from .streams import StreamPipe
from .token_estimate import estimate_input_tokens

__all__ = ["Proxy", "install_routes"]

log = logging.getLogger("llm_gateway.proxy")

SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class ClientCall:
    """What the client asked for, parsed once."""

    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    stream: bool


def parse_call(endpoint: Endpoint, raw: bytes) -> ClientCall:
    if not raw.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    return ClientCall(endpoint=endpoint, body=body, model=model, stream=stream)


def candidates(config: Config, model: str) -> list[UpstreamAccount]:
    """Enabled accounts serving ``model``, lowest priority number first."""
    found = [
        account
        for account in config.upstream_accounts
        if account.enabled
        and not account.oauth.needs_reauth
        and (matches(account.models, model) or any(c == model for c, _ in account.model_map))
    ]
    found.sort(key=lambda a: a.priority)  # stable: config order within a priority
    return found


def available_models(config: Config) -> list[str]:
    """Model names (and patterns) the enabled accounts declare, for messages and listings."""
    names: dict[str, None] = {}
    for account in config.upstream_accounts:
        if account.enabled:
            for client, _ in account.model_map:
                names[client] = None
            for pattern in account.models:
                names[pattern] = None
    return list(names)


def timeouts_of(config: Config) -> Timeouts:
    p = config.proxy
    return Timeouts(
        connect=p.connect_timeout,
        tls=p.tls_timeout,
        response_headers=p.response_timeout,
        stream_idle=p.stream_idle_timeout,
        total=p.request_timeout,
    )


class _Retry(Exception):
    """This candidate failed before the client saw anything; try the next."""

    def __init__(self, error: GatewayError):
        self.error = error


class Proxy:
    def __init__(self, state: GatewayState, pool: ConnectionPool, credentials: Credentials):
        self.state = state
        self.pool = pool
        self.credentials = credentials

    async def models(self, request: Request) -> Response:
        config = self.state.config
        key = authenticate(request.header_map, config, time.time())
        authorize(key, "read")
        anthropic = request.header("anthropic-version") is not None
        return json_response(200, list_models(config, key, anthropic_shape=anthropic))

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        config = self.state.config
        key = authenticate(request.header_map, config, time.time())
        call = parse_call(endpoint, request.body)
        authorize(key, endpoint.permission, call.model)
        accounts = candidates(config, call.model)
        if endpoint.operation is Operation.COUNT_TOKENS and accounts:
            counting = [a for a in accounts if _counts_tokens(a)]
            if not counting:
                tokens = estimate_input_tokens(call.body)
                return json_response(
                    200, {"input_tokens": tokens}, [("x-llm-gateway-estimate", "true")]
                )
            accounts = counting
        if not accounts:
            known = ", ".join(available_models(config)) or "none configured"
            raise NotFound(
                f"no upstream serves model '{call.model}'; models available: {known}",
                param="model",
            )
        last: GatewayError | None = None
        for attempt, account in enumerate(accounts, start=1):
            try:
                return await self._attempt(
                    request, call, account, config, last_try=attempt == len(accounts)
                )
            except _Retry as retry:
                last = retry.error
                log.warning(
                    "upstream attempt failed",
                    extra={
                        "request_id": request.request_id,
                        "account_id": account.id,
                        "attempts": attempt,
                        "error": type(retry.error).__name__,
                        "status": retry.error.status,
                    },
                )
        assert last is not None
        raise last

    async def _attempt(
        self,
        request: Request,
        call: ClientCall,
        account: UpstreamAccount,
        config: Config,
        *,
        last_try: bool,
    ) -> Response:
        prepared = prepare(call, account, self.credentials.for_account(account), request)
        try:
            upstream = await self.pool.request(
                "POST",
                prepared.target.url,
                headers=prepared.headers,
                body=prepared.body,
                timeouts=timeouts_of(config),
                verify_tls=account.verify_tls,
            )
        except UpstreamError as error:
            if last_try:
                raise
            raise _Retry(error) from None
        if upstream.status >= 400:
            try:
                data = await upstream.aread(max_bytes=1 << 20)
            finally:
                await upstream.aclose()
            error_response = relay_error(prepared, upstream.status, upstream.headers, data)
            if upstream.status in RETRYABLE_STATUS and not last_try:
                raise _Retry(GatewayError("upstream failed", status=upstream.status))
            return error_response
        if call.stream and _is_event_stream(upstream.header("content-type")):
            pipe = prepared.stream_pipe()
            return Response(200, list(SSE_HEADERS), self._stream(upstream, pipe, request))
        try:
            data = await upstream.aread(max_bytes=config.proxy.max_response_bytes)
        finally:
            await upstream.aclose()
        return relay_body(prepared, upstream.status, upstream.headers, data)

    async def _stream(
        self, upstream: Any, pipe: StreamPipe, request: Request
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_bytes():
                out = pipe.feed(chunk)
                if out:
                    yield out
            tail = pipe.finish()
        except UpstreamError as error:
            log.warning(
                "upstream stream failed",
                extra={"request_id": request.request_id, "error": type(error).__name__},
            )
            tail = pipe.fail(error.kind, error.message)
        finally:
            await upstream.aclose()
        if tail:
            yield tail


def _counts_tokens(account: UpstreamAccount) -> bool:
    return Operation.COUNT_TOKENS in get_provider(account.provider).wire_formats


def _is_event_stream(content_type: str | None) -> bool:
    return bool(content_type) and "text/event-stream" in (content_type or "")


def install_routes(app: GatewayApp, proxy: Proxy) -> None:
    """Register the inference endpoints and the model listing on ``app``."""
    for path, endpoint in ENDPOINTS.items():
        app.route("POST", path, functools.partial(proxy.handle, endpoint=endpoint))
    app.route("GET", "/v1/models", proxy.models)
