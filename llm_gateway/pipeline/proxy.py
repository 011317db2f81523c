"""The inference request path, from a client's request to its response.

Theory of operation, one request:

1. *Check.* Authenticate the gateway key, apply its request-rate limit, parse
   the JSON body once, check the key may use the model, and reserve its spend
   budget (``accounting.BudgetGate``).
2. *Route.* The requested model goes through the gateway's ``model_aliases``,
   and its ``fallbacks`` follow it (``routing.models``). For each model in
   turn, the candidates are the enabled accounts whose ``models`` patterns or
   ``model_map`` match, less OAuth accounts nobody authorised; the
   ``Selector`` orders them by the configured strategy and drops those whose
   circuit is open, that are cooling down after a 429, or whose credentials
   failed. No candidate at all is a 404 naming the models that exist (a 502
   saying what to run when an OAuth account waits for ``oauth start``);
   candidates that are all unavailable say why (``eligibility``).
3. *Attempt* (``exchange.prepare`` builds the upstream request: passthrough or
   conversion). Every result is recorded in the account's health. A failure
   before any byte reached the client (connect error, timeout, 5xx, 429, 529,
   rejected credentials) moves on to the next candidate, up to
   ``routing.max_attempts`` and within ``routing.deadline``, then to the next
   fallback model; a lone account whose 429/503/529 asks for a short wait is
   retried after it, within ``routing.max_retry_wait`` for all such waits
   together. A client error (4xx) is relayed at once in the client's format
   and never retried.
4. *Relay.* Non-streaming bodies are read whole and converted back; streams
   flow through a ``StreamPipe`` chunk by chunk, pulled by the server's writer.
   After the first byte went out there is no retry: a failure becomes an error
   event in the client's format and the stream ends cleanly. Token usage is
   charged to the key's tokens-per-minute bucket when known, and noted for the
   usage ledger (``accounting``, when the response is complete).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..config.schema import Config, GatewayKey, UpstreamAccount
from ..errors import (
    GatewayError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
)
from ..formats.registry import FORMATS
from ..formats.unified import Usage
from ..metrics.families import GatewayMetrics
from ..oauth.errors import OAuthError, ReauthorizationRequired
from ..oauth.manager import TokenManager
from ..providers.base import Operation
from ..providers.registry import get_provider
from ..routing.health import HealthTracker, retry_after_from_headers
from ..routing.models import route_models
from ..routing.ratelimit import KeyLimits, RateLimiter
from ..routing.retry_wait import RetryWaits
from ..routing.selection import Candidate, Selector, Strategy, matches
from ..routing.state import RateBuckets, SharedHealth
from ..server.app import GatewayApp, GatewayState
from ..server.messages import Request, Response, json_response
from ..server.paths import PathPattern
from ..state.health_link import HealthLink
from ..state.local_buckets import LocalBuckets
from ..store.responses import FILE_NAME as RESPONSES_FILE
from ..store.responses import ResponseStore
from ..streaming.json_array import CONTENT_TYPE as JSON_ARRAY_TYPE
from ..streaming.registry import STREAM_FORMATS
from ..upstream.pool import ConnectionPool
from ..upstream.response import Response as UpstreamResponse
from .accounting import BudgetGate
from .auth import authenticate, authorize
from .call import ClientCall, consume_query, parse_call
from .catalog import ModelCache, list_models
from .chains import RESPONSES_PATH, RESPONSES_PREFIX, ResponseChains
from .compaction import Compactions
from .credentials import CredentialError, Credentials
from .eligibility import (
    candidates,
    credentials_rejected,
    no_account_error,
    reauthorisation_needed,
    unavailable_error,
)
from .endpoints import ENDPOINTS, KEY_QUERY, MODEL_ENDPOINTS, Endpoint
from .exchange import (
    Prepared,
    account_header,
    error_answer,
    prepare,
    relay_body,
    relay_body_as_stream,
    relay_error,
    timeouts_of,
)
from .gemini_models import gemini_model, gemini_models
from .kept_relay import KeptRelay
from .memory_budget import LARGE_BODY_BYTES, MemoryBudget, estimate
from .outcomes import Outcome, classify_answer, classify_error, client_safe, record
from .streams import StreamPipe
from .token_estimate import estimate_input_tokens
from .usage import billable

__all__ = ["Proxy", "install_routes"]

log = logging.getLogger("llm_gateway.proxy")

SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
#: a stream written as a JSON array (``ClientCall.json_array``)
JSON_ARRAY_HEADERS = [("content-type", JSON_ARRAY_TYPE), ("cache-control", "no-cache")]
_STRATEGIES = {s.value.replace("_", "-"): s for s in Strategy}
#: upstream answers whose retry-after a lone account's request may wait out
_WAITABLE = (Outcome.RATE_LIMITED, Outcome.OVERLOADED)
#: request bodies this large are prepared (converted, re-encoded) on a worker
#: thread: the interpreter then switches between it and the event loop every few
#: milliseconds, so one huge request does not stall every other connection
_PREPARE_ON_THREAD_BYTES = 1 << 20
#: once a stream's final event has gone to the client, the longest silence
#: allowed before the rest of the upstream body (normally its end, already on
#: its way, so the connection can be kept)
_AFTER_END_WAIT = 2.0
#: a token counter's answers that mean the upstream has no such endpoint
_NO_COUNTER = (404, 405, 501)


def strategy_for(config: Config, model: str) -> Strategy:
    for pattern, name in config.routing.model_strategies:
        if matches((pattern,), model):
            return _STRATEGIES[name]
    return _STRATEGIES[config.routing.strategy]


class _TokenRejected(Exception):
    """The upstream refused an OAuth access token (401): refresh and send again."""


class _Exhausted(Exception):
    """No account of one model could take the request; ``error`` says why."""

    def __init__(self, error: GatewayError):
        self.error = error


class _Failed(Exception):
    """This attempt failed before the client saw anything."""

    def __init__(self, error: GatewayError, outcome: Outcome, retry_after: float | None = None):
        self.error = error
        self.outcome = outcome
        self.retry_after = retry_after


class Proxy:
    def __init__(
        self,
        state: GatewayState,
        pool: ConnectionPool,
        credentials: Credentials,
        *,
        health: HealthTracker,
        tokens: TokenManager | None = None,
        limiter: RateBuckets | None = None,
        shared_health: SharedHealth | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.state = state
        self.pool = pool
        self.credentials = credentials
        self.health = health
        #: what the other workers say of the accounts, and what this one tells them
        self.health_link = HealthLink(health, shared_health, clock=clock, wall_clock=wall_clock)
        self.tokens = tokens
        self.selector = Selector()
        #: per-key buckets: in this process, or shared by every worker
        self.limiter: RateBuckets = LocalBuckets(RateLimiter()) if limiter is None else limiter
        self.memory = MemoryBudget(state.config.proxy.large_request_memory)
        #: what glob-only accounts' upstreams list, filled in the background
        self.catalog = ModelCache()
        self.clock = clock
        self.wall_clock = wall_clock
        #: Responses turns kept for previous_response_id, and passthrough chains' accounts
        store = ResponseStore(credentials.home / RESPONSES_FILE, credentials.secret_key)
        relay = KeptRelay(pool, self.credential_for, ENDPOINTS[RESPONSES_PATH].client_format)
        self.chains = ResponseChains(store, wall_clock, relay)
        #: Codex's compaction for accounts that cannot compact themselves
        self.compactions = Compactions(credentials.secret_key)
        #: the request path only adds to these (rendered by ``/metrics``)
        self.metrics = GatewayMetrics()
        #: per-key spend budgets (the runtime gives it the ledger to read)
        self.budgets = BudgetGate(None, wall_clock)

    # -- endpoints -----------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        config = self.state.config
        key = authenticate(request.header_map, config, self.wall_clock())
        request.notes["key_id"] = key.id
        authorize(key, "read")
        anthropic = request.header("anthropic-version") is not None
        listing = list_models(config, key, anthropic_shape=anthropic, cache=self.catalog)
        return json_response(200, listing)

    async def gemini_models(self, request: Request) -> Response:
        """``GET /v1beta/models`` (the Gemini API's list)."""
        key = self._reader_key(request)
        return json_response(200, gemini_models(self.state.config, key, self.catalog))

    async def gemini_model(self, request: Request, pattern: PathPattern) -> Response:
        """``GET /v1beta/models/{model}``."""
        key = self._reader_key(request)
        name = pattern.match(request.path) or ""
        return json_response(200, gemini_model(self.state.config, key, self.catalog, name))

    def _reader_key(self, request: Request) -> GatewayKey:
        consume_query(request, KEY_QUERY)
        key = authenticate(request.header_map, self.state.config, self.wall_clock())
        request.notes["key_id"] = key.id
        authorize(key, "read")
        return key

    async def stored_response(self, request: Request) -> Response:
        """``GET`` / ``DELETE /v1/responses/{id}``: a response the gateway or an account keeps."""
        config = self.state.config
        key = authenticate(request.header_map, config, self.wall_clock())
        request.notes["key_id"] = key.id
        authorize(key, "write")
        response_id = request.path[len(RESPONSES_PREFIX) :]
        may_use = functools.partial(authorize, key, "write")
        if request.method == "DELETE":
            return await self.chains.delete(key.id, response_id, config, may_use)
        return await self.chains.retrieve(key.id, response_id, config, may_use)

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        """A large body waits for the memory budget (after its key is checked)."""
        request.notes["client_format"] = endpoint.client_format
        consume_query(request, endpoint.key_query)
        if len(request.body) < LARGE_BODY_BYTES:
            return await self._handle(request, endpoint)
        config = self.state.config
        authenticate(request.header_map, config, self.wall_clock())
        self.memory.limit = config.proxy.large_request_memory
        async with self.memory.hold(estimate(request.body)):
            return await self._handle(request, endpoint)

    async def _handle(self, request: Request, endpoint: Endpoint) -> Response:
        config = self.state.config
        notes = request.notes
        notes["client_format"] = endpoint.client_format
        key = authenticate(request.header_map, config, self.wall_clock())
        notes["key_id"] = key.id
        authorize(key, endpoint.permission)
        try:
            limit_headers = await self._check_rate(key)
        except RateLimited:
            notes["rejected"] = "rate_limit"
            raise
        call = parse_call(
            endpoint, request.body, request.header_map, path=request.path, query=request.query
        )
        notes["model"] = call.model
        notes["streamed"] = call.stream
        authorize(key, endpoint.permission, call.model)
        await self.budgets.admit(request, key, config, call.body)
        models = route_models(config.model_aliases, config.fallbacks, call.model)
        accounts = candidates(config, models[0])
        if endpoint.keeps_responses:
            call, owner = await self.chains.resolve(request, call, key.id, config)
            call = self.compactions.expand(request, call, key.id)
            accounts = [a for a in accounts if a.id == owner] or accounts
        counting = endpoint.operation is Operation.COUNT_TOKENS
        if counting and accounts:
            accounts = [a for a in accounts if _counts_tokens(a)]
            if not accounts:
                return _estimated(endpoint, call)
        deadline = self.clock() + config.routing.deadline
        first: GatewayError | None = None
        for index, model in enumerate(models):
            if index:
                accounts = candidates(config, model)
                if counting:  # only accounts whose upstream counts tokens
                    accounts = [a for a in accounts if _counts_tokens(a)]
            try:
                if not accounts:
                    raise _Exhausted(no_account_error(config, model))
                response = await self._route(request, call, model, accounts, config, key, deadline)
            except _Exhausted as exhausted:
                # the first model's own failure is the one the client hears of,
                # unless it had no account at all
                if first is None or (isinstance(first, NotFound) and accounts):
                    first = exhausted.error
                continue
            if counting and response.status in _NO_COUNTER:
                # the upstream has no such endpoint after all (a proxy in front
                # of it, an older server): count locally rather than fail
                response = _estimated(endpoint, call)
            response.headers.extend(limit_headers)
            if endpoint.keeps_responses:
                response = self.compactions.finish(request, call, key.id, response)
                response = await self.chains.keep(request, response, call, key.id, config)
            return response
        assert first is not None
        raise first

    # -- routing and failover ----------------------------------------------------------

    async def _check_rate(self, key: GatewayKey) -> list[tuple[str, str]]:
        if key.rpm is None and key.tpm is None:
            return []
        decision = await self.limiter.check_request(
            key.id, KeyLimits(rpm=key.rpm, tpm=key.tpm), self.clock()
        )
        if not decision.allowed:
            raise RateLimited(
                "rate limit exceeded for this API key; retry after "
                f"{math.ceil(decision.retry_after)} s",
                retry_after=decision.retry_after,
                headers=decision.headers,
            )
        return decision.headers

    def _order(
        self, call: ClientCall, model: str, accounts: list[UpstreamAccount], config: Config
    ) -> list[UpstreamAccount]:
        by_id = {a.id: a for a in accounts}
        pool = [Candidate(a.id, a.priority, a.weight) for a in accounts]
        session = call.session if config.routing.sticky_sessions else None
        ordered = self.selector.order(
            pool,
            self.health,
            self.clock(),
            strategy=strategy_for(config, model),
            session=session,
        )
        if not ordered:
            raise _Exhausted(unavailable_error(model, accounts, self.health, self.clock()))
        return [by_id[c.account_id] for c in ordered]

    async def _route(
        self,
        request: Request,
        call: ClientCall,
        model: str,
        accounts: list[UpstreamAccount],
        config: Config,
        key: GatewayKey,
        deadline: float,
    ) -> Response:
        """Try ``model``'s accounts in order; raises ``_Exhausted`` when none could."""
        routing = config.routing
        await self.health_link.sync([a.id for a in accounts])
        ordered = self._order(call, model, accounts, config)
        earlier = request.notes.get("attempts")  # on an earlier model's accounts
        attempts = earlier if isinstance(earlier, int) else 0
        waits = RetryWaits(routing.max_retry_wait)
        last: _Failed | None = None
        queue = list(ordered)
        while queue and attempts < routing.max_attempts and self.clock() < deadline:
            account = queue.pop(0)
            if not self.health.try_acquire_probe(account.id, self.clock()):
                continue
            self._count_again(request, account.id)
            attempts += 1
            request.notes["attempts"] = attempts
            try:
                response = await self._attempt(request, call, model, account, config, key)
            except _Failed as failed:
                await self.health_link.flush()
                last = failed
                self.metrics.attempts.inc((account.id, failed.outcome.value))
                request.notes["failed_account"] = account.id
                log.warning(
                    "upstream attempt failed",
                    extra={
                        "request_id": request.request_id,
                        "account_id": account.id,
                        "attempts": attempts,
                        "error": failed.outcome.value,
                        "status": failed.error.status,
                    },
                )
                if not failed.outcome.retryable:
                    break
                if (
                    len(ordered) == 1
                    and failed.outcome in _WAITABLE
                    and failed.retry_after is not None
                ):
                    # all waits of one request together stay within max_retry_wait;
                    # then the answer, retry-after included, goes to the client
                    pause = waits.next_wait(failed.retry_after, deadline - self.clock())
                    if pause is not None:
                        waits = waits.after(pause)
                        await asyncio.sleep(pause)
                        queue.append(account)
                continue
            await self.health_link.flush()
            if call.session is not None and routing.sticky_sessions:
                self.selector.remember(call.session, account.id, self.clock())
            answered = Outcome.OK if response.status < 400 else Outcome.CLIENT_ERROR
            self.metrics.attempts.inc((account.id, answered.value))
            return response
        if last is None:
            raise _Exhausted(
                ServiceUnavailable(
                    f"no upstream account for model '{model}' could take the request"
                )
            )
        raise _Exhausted(last.error)

    def _count_again(self, request: Request, account_id: str) -> None:
        """A new attempt after a failed one: a retry (same account) or a failover."""
        failed = request.notes.pop("failed_account", None)
        if isinstance(failed, str):
            family = self.metrics.retries if failed == account_id else self.metrics.failovers
            family.inc((failed,))

    async def credential_for(self, account: UpstreamAccount) -> str:
        """The account's clear credential (an OAuth access token, refreshed when due)."""
        if account.type == "oauth" and self.tokens is not None:
            return await self.tokens.access_token(account)
        return self.credentials.for_account(account)

    async def _credential(self, account: UpstreamAccount) -> str:
        """The account's clear credential; a failure here is the account's, so the
        next candidate is tried."""
        try:
            return await self.credential_for(account)
        except (OAuthError, CredentialError) as error:
            if isinstance(error, OAuthError) and not error.rejects_credentials:
                # the token endpoint failed for now (5xx, no answer): the account's
                # credentials are fine, so it is not taken out until someone acts
                record(self.health, account.id, Outcome.SERVER_ERROR, self.clock())
                raise _Failed(error, Outcome.SERVER_ERROR) from None
            self.health.record_auth_failure(account.id, self.clock(), error.message)
            told: GatewayError = error
            if isinstance(error, ReauthorizationRequired):
                told = UpstreamError(reauthorisation_needed(account))
            raise _Failed(told, Outcome.AUTH_FAILED) from None

    async def _attempt(
        self,
        request: Request,
        call: ClientCall,
        model: str,
        account: UpstreamAccount,
        config: Config,
        key: GatewayKey,
    ) -> Response:
        credential = await self._credential(account)
        try:
            return await self._send(request, call, model, account, config, key, credential, True)
        except _TokenRejected:
            # An OAuth access token refused with 401: refresh once (single-flight
            # across requests) and send again; a second 401 is a credential failure.
            assert self.tokens is not None
            try:
                renewed = await self.tokens.refresh_after_401(account.id, credential)
            except OAuthError as error:
                raise _Failed(error, Outcome.AUTH_FAILED) from None
            return await self._send(request, call, model, account, config, key, renewed, False)

    async def _send(
        self,
        request: Request,
        call: ClientCall,
        model: str,
        account: UpstreamAccount,
        config: Config,
        key: GatewayKey,
        credential: str,
        may_refresh: bool,
    ) -> Response:
        notes = request.notes
        notes["account_id"] = account.id
        notes["account_name"] = account.name
        call = self.compactions.call_for(request, call, account, model)
        if len(request.body) < _PREPARE_ON_THREAD_BYTES:
            prepared = prepare(call, account, credential, request, config.oauth, model)
        else:  # rebuilding it may take seconds: let the loop serve others meanwhile
            prepared = await asyncio.to_thread(
                prepare, call, account, credential, request, config.oauth, model
            )
        notes["upstream_model"] = prepared.upstream_model
        notes["upstream_format"] = prepared.upstream_format
        started = self.clock()
        self.health.begin_request(account.id)
        try:
            upstream = await self.pool.request(
                "POST",
                prepared.target.url,
                headers=prepared.headers,
                body=prepared.body,
                timeouts=timeouts_of(config),
                verify_tls=account.verify_tls,
                proxy=account.proxy,
            )
        except UpstreamError as error:
            self.health.end_request(account.id)
            outcome = classify_error(error)
            record(self.health, account.id, outcome, self.clock())
            _log_transport(request, account, error)
            raise _Failed(client_safe(error), outcome) from None
        notes["ttfb_ms"] = round((self.clock() - started) * 1000, 2)
        if upstream.status >= 400:
            if upstream.status == 401 and may_refresh and account.type == "oauth" and self.tokens:
                self.health.end_request(account.id)
                await upstream.aclose()
                raise _TokenRejected()
            return await self._upstream_error(request, call, prepared, account, upstream, key)
        content_type = upstream.header("content-type")
        array = call.stream and _is_array_stream(prepared.upstream_format, content_type)
        if call.stream and (array or _is_event_stream(content_type)):
            pipe = prepared.stream_pipe(array_input=array)
            stream = _ProxyStream(self, upstream, pipe, request, account, key)
            stream.started = started
            stream.debug_level = _stream_debug_level(request, key)
            # a JSON array has no room for an SSE comment: no keepalive there
            keepalive = b"" if call.json_array else STREAM_FORMATS[prepared.client_format].keepalive
            return Response(200, _stream_headers(call), stream, keepalive)
        try:
            data = await upstream.aread(max_bytes=config.proxy.max_response_bytes)
        except UpstreamError as error:
            outcome = classify_error(error)
            record(self.health, account.id, outcome, self.clock())
            _log_transport(request, account, error)
            raise _Failed(client_safe(error), outcome) from None
        finally:
            self.health.end_request(account.id)
            await upstream.aclose()
        record(self.health, account.id, Outcome.OK, self.clock(), latency=self.clock() - started)
        return await self._answer(
            request, call, prepared, key, data, upstream.status, upstream.headers
        )

    async def _answer(
        self,
        request: Request,
        call: ClientCall,
        prepared: Prepared,
        key: GatewayKey,
        data: bytes,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """A whole upstream answer in the client's format (replayed as a stream when
        the client asked for one)."""
        if call.stream:  # a whole answer to a streaming request: replay it as a stream
            body, usage = relay_body_as_stream(prepared, data)
            response = Response(200, _stream_headers(call), body)
        else:
            response, usage = relay_body(prepared, status, headers or [], data)
        await self._charge(request, key, usage)
        return response

    async def _upstream_error(
        self,
        request: Request,
        call: ClientCall,
        prepared: Prepared,
        account: UpstreamAccount,
        upstream: UpstreamResponse,
        key: GatewayKey,
    ) -> Response:
        try:
            data = await upstream.aread(max_bytes=1 << 20)
        except UpstreamError:
            data = b""
        finally:
            self.health.end_request(account.id)
            await upstream.aclose()
        status = upstream.status
        outcome = classify_answer(get_provider(account.provider), status, data)
        retry_after = (
            retry_after_from_headers(upstream.headers, self.wall_clock())
            if outcome in _WAITABLE
            else None
        )
        record(
            self.health,
            account.id,
            outcome,
            self.clock(),
            retry_after=retry_after,
            message=f"upstream answered {status}",
        )
        if outcome is Outcome.CLIENT_ERROR:
            answer = error_answer(prepared, account, status, data)
            if answer is not None:  # e.g. a refusal: an answer in the client's format
                return await self._answer(request, call, prepared, key, answer)
        relayed = relay_error(prepared, status, upstream.headers, data)
        if outcome is Outcome.CLIENT_ERROR:
            return relayed
        error: GatewayError
        if outcome is Outcome.AUTH_FAILED:
            error = UpstreamError(credentials_rejected(account, f"upstream answered {status}"))
        else:
            error = _RelayedResponse(relayed)
        raise _Failed(error, outcome, retry_after)

    async def _charge(self, request: Request, key: GatewayKey, usage: Usage | None) -> None:
        if usage is None:
            return
        request.notes["usage"] = usage
        request.notes["input_tokens"] = (
            usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        )
        request.notes["output_tokens"] = usage.output_tokens
        if key.tpm is not None:
            await self.limiter.record_tokens(
                key.id, KeyLimits(rpm=key.rpm, tpm=key.tpm), billable(usage), self.clock()
            )


class _ProxyStream:
    """A streamed response body: upstream chunks through a pipe, cleaned up exactly once.

    The server pulls chunks with ``async for`` and always calls ``aclose``, even
    when the client went away before the first chunk; ``aclose`` then closes the
    upstream response (freeing its connection) and settles the account's
    in-flight count and health.
    """

    def __init__(
        self,
        proxy: Proxy,
        upstream: UpstreamResponse,
        pipe: StreamPipe,
        request: Request,
        account: UpstreamAccount,
        key: GatewayKey,
    ):
        self.proxy = proxy
        self.upstream = upstream
        self.pipe = pipe
        self.request = request
        self.account = account
        self.key = key
        self.started = proxy.clock()
        self.outcome: Outcome | None = None
        #: log each converted chunk at this level (None: don't)
        self.debug_level: int | None = None
        self._closed = False
        proxy.metrics.streams.inc((), 1)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        pipe = self.pipe
        winding_down = False
        try:
            async for chunk in self.upstream.aiter_bytes():
                out = pipe.feed(chunk)
                if out:
                    if self.debug_level is not None:
                        self._debug(out)
                    yield out
                if pipe.complete and not winding_down:
                    winding_down = True
                    self.upstream.wind_down(_AFTER_END_WAIT)
            tail = pipe.finish()
            self.outcome = Outcome.OK
        except UpstreamError as error:
            if pipe.complete:  # after the stream's final event: the answer is whole
                self.outcome = Outcome.OK
                log.debug(
                    "upstream stream failed after its end",
                    extra={"request_id": self.request.request_id, "reason": error.message},
                )
                await self.aclose()
                return
            self.outcome = classify_error(error)
            log.warning(
                "upstream stream failed",
                extra={
                    "request_id": self.request.request_id,
                    "account_id": self.account.id,
                    "error": type(error).__name__,
                    "reason": error.message,
                },
            )
            self.request.notes["error"] = type(error).__name__
            tail = pipe.fail(error.kind, client_safe(error).message)
        await self.aclose()
        if tail:
            yield tail

    def _debug(self, out: bytes) -> None:
        assert self.debug_level is not None
        log.log(
            self.debug_level,
            "stream event",
            extra={"request_id": self.request.request_id, "reason": out.decode("utf-8", "replace")},
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        proxy = self.proxy
        proxy.metrics.streams.inc((), -1)
        proxy.health.end_request(self.account.id)
        await self.upstream.aclose()
        now = proxy.clock()
        if self.outcome is not None:
            record(proxy.health, self.account.id, self.outcome, now, latency=now - self.started)
        else:  # the client left: not the account's doing
            proxy.health.record_client_error(self.account.id, now)
        await proxy._charge(self.request, self.key, self.pipe.usage)


class _RelayedResponse(GatewayError):
    """An upstream error answer to relay as-is when no other account can help."""

    def __init__(self, response: Response):
        super().__init__("upstream error", status=response.status)
        self.response = response


def _log_transport(request: Request, account: UpstreamAccount, error: UpstreamError) -> None:
    """The full transport error (hosts, phases) for the operator; clients get less."""
    log.info(
        "upstream transport error",
        extra={
            "request_id": request.request_id,
            "account_id": account.id,
            "error": type(error).__name__,
            "reason": error.message,
        },
    )


def _stream_debug_level(request: Request, key: GatewayKey) -> int | None:
    """Converted stream events are logged with debug logging on, or at info level when
    an admin key asks with ``X-Debug-Stream: true``."""
    if request.header("x-debug-stream") == "true" and "admin" in key.permissions:
        return logging.INFO
    return logging.DEBUG if log.isEnabledFor(logging.DEBUG) else None


def _estimated(endpoint: Endpoint, call: ClientCall) -> Response:
    """The local token estimate, marked as one. Only a request the model could be
    sent is counted: the same checks (and 400s) as for the request itself."""
    unified = FORMATS[endpoint.client_format].parse_request(call.body)
    answer = FORMATS[endpoint.client_format].token_count.render(estimate_input_tokens(unified))
    return json_response(200, answer, [("x-llm-gateway-estimate", "true")])


def _counts_tokens(account: UpstreamAccount) -> bool:
    return get_provider(account.provider).token_counter is not None


def _stream_headers(call: ClientCall) -> list[tuple[str, str]]:
    return list(JSON_ARRAY_HEADERS if call.json_array else SSE_HEADERS)


def _is_event_stream(content_type: str | None) -> bool:
    return content_type is not None and "text/event-stream" in content_type


def _is_array_stream(upstream_format: str, content_type: str | None) -> bool:
    """A stream answered as a JSON array (``StreamFormat.array_stream``)."""
    return (
        content_type is not None
        and content_type.lower().startswith("application/json")
        and STREAM_FORMATS[upstream_format].array_stream
    )


async def _relaying(handler: Callable[[Request], Any], request: Request) -> Response:
    """Run ``handler``; an upstream error answer kept for relaying becomes the response.
    Once an account was chosen, the response (or error) names it."""
    try:
        response: Response = await handler(request)
    except _RelayedResponse as relayed:
        response = relayed.response
    except GatewayError as error:
        name = request.notes.get("account_name")
        if isinstance(name, str):
            error.headers = [*error.headers, account_header(name)]
        raise
    name = request.notes.get("account_name")
    if isinstance(name, str):
        response.headers.append(account_header(name))
    return response


def install_routes(app: GatewayApp, proxy: Proxy) -> None:
    """Register the inference endpoints and the model listing on ``app``."""
    for path, endpoint in ENDPOINTS.items():
        handler = functools.partial(proxy.handle, endpoint=endpoint)
        app.route("POST", path, functools.partial(_relaying, handler))
    for endpoint in MODEL_ENDPOINTS.values():
        assert endpoint.pattern is not None
        handler = functools.partial(proxy.handle, endpoint=endpoint)
        app.route_pattern("POST", endpoint.pattern, functools.partial(_relaying, handler))
    app.route("GET", "/v1/models", proxy.models)
    app.route("GET", "/v1beta/models", proxy.gemini_models)
    one_model = PathPattern.parse("/v1beta/models/{model}")
    app.route_pattern("GET", one_model, functools.partial(proxy.gemini_model, pattern=one_model))
    app.route_prefix("GET", RESPONSES_PREFIX, proxy.stored_response)
    app.route_prefix("DELETE", RESPONSES_PREFIX, proxy.stored_response)
