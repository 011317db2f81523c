"""Responses API chains: ``previous_response_id``, kept responses, and their accounts.

Theory of operation. A Responses client may name an earlier turn instead of
resending it. Two cases:

* The turn went to an account that speaks Responses itself (OpenAI): the
  upstream keeps it (unless the client said ``store: false``), so the request
  passes through untouched, and the chain must stay on that account. The
  gateway remembers which account produced each such response id, in the
  same file as the kept turns (``store.responses``: per gateway key, bounded
  by count and age), so chains stay on their accounts across a restart.
* The turn was converted (Anthropic, chat, Gemini upstreams keep nothing):
  the gateway kept it (``store.responses``: sealed, per gateway key, bounded
  by count and age) unless the client said ``store: false``. ``resolve``
  puts the kept input and output items in front of the new input and drops
  ``previous_response_id``, so the request is whole by itself; it prefers the
  account that answered before. An id the gateway does not have is refused
  by the codec with OpenAI's 400.

``keep`` saves what a converted turn answered: a whole body at once, a stream
when its terminal event has passed through (the stream is only watched, never
changed). ``retrieve`` and ``delete`` serve ``GET``/``DELETE
/v1/responses/{id}``: responses the gateway keeps from its store, responses
an account keeps by asking that account (``kept_relay``), for the key that
made them only; any other id is OpenAI's 404.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from ..config.schema import Config, UpstreamAccount
from ..errors import NotFound, SecretKeyError
from ..formats.responses_compaction import is_compaction_request
from ..json_text import dumps_bytes
from ..providers.registry import get_provider
from ..server.messages import Request, Response, json_response
from ..store.responses import ChainOwner, ResponseStore, StoredResponse
from ..streaming.sse import SSEDecoder, SSEError, SSEEvent
from .call import ClientCall
from .kept_relay import KeptRelay

__all__ = ["ResponseChains", "RESPONSES_PATH", "RESPONSES_PREFIX"]

log = logging.getLogger("llm_gateway.pipeline")

#: ``POST /v1/responses``
RESPONSES_PATH = "/v1/responses"
#: ``GET``/``DELETE`` ``/v1/responses/{id}``
RESPONSES_PREFIX = RESPONSES_PATH + "/"
_TERMINAL = frozenset(("response.completed", "response.incomplete"))


def _items(value: object) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


class ResponseChains:
    def __init__(
        self,
        store: ResponseStore,
        wall_clock: Callable[[], float],
        relay: KeptRelay | None = None,
    ):
        self.store = store
        self.wall_clock = wall_clock
        #: asks an account for the responses it keeps (None: such ids are unknown)
        self.relay = relay

    # -- the request path ------------------------------------------------------------

    async def resolve(
        self, request: Request, call: ClientCall, key_id: str, config: Config
    ) -> tuple[ClientCall, str | None]:
        """The call with a kept previous turn put in front, and the account the
        chain belongs to (None: any)."""
        previous = call.body.get("previous_response_id")
        if not isinstance(previous, str) or not previous:
            return call, None
        kept = await self.store.aget(
            key_id, previous, now=self.wall_clock(), max_age=config.responses.max_age
        )
        if kept is None:
            owner = await self.store.aowner(
                key_id, previous, now=self.wall_clock(), max_age=config.responses.max_age
            )
            return call, None if owner is None else owner.account_id
        body = {k: v for k, v in call.body.items() if k != "previous_response_id"}
        body["input"] = [*kept.input_items, *kept.output_items, *_items(call.body.get("input"))]
        request.body = dumps_bytes(body)
        return replace(call, body=body), kept.account_id

    async def keep(
        self, request: Request, response: Response, call: ClientCall, key_id: str, config: Config
    ) -> Response:
        """Save the turn ``response`` answers (watching a stream as it passes)."""
        account_id = request.notes.get("account_id")
        account = config.account_by_id(account_id) if isinstance(account_id, str) else None
        if response.status != 200 or account is None:
            return response
        passthrough = self._passthrough(account, call)
        if call.body.get("store") is False:  # kept by nobody
            return response
        if not passthrough and is_compaction_request(call.body):
            return response  # a summary the client carries: nothing to chain from
        turn = _Turn(self, call, key_id, account.id, config, passthrough)
        if isinstance(response.body, bytes):
            await turn.answered(response.body)
        else:
            response.body = _Watched(response.body, turn)
        return response

    def _passthrough(self, account: UpstreamAccount, call: ClientCall) -> bool:
        endpoint = call.endpoint
        provider = get_provider(account.provider)
        upstream_model = account.upstream_model(call.model)
        _, wire = provider.upstream_operation(account, endpoint.operation, upstream_model)
        return wire == endpoint.client_format

    async def remember_owner(
        self, key_id: str, response_id: str, owner: ChainOwner, config: Config
    ) -> None:
        limits = config.responses
        try:
            await self.store.aput_owner(
                key_id,
                response_id,
                owner,
                created=self.wall_clock(),
                max_stored=limits.max_stored,
                max_age=limits.max_age,
            )
        except (OSError, sqlite3.Error) as error:
            # the answer stands; only the chain's account is forgotten
            log.warning("could not remember a response's account", extra={"reason": str(error)})

    # -- GET / DELETE /v1/responses/{id} ---------------------------------------------------

    async def retrieve(
        self, key_id: str, response_id: str, config: Config, may_use: Callable[[str], None]
    ) -> Response:
        """The response ``response_id`` made with ``key_id``: kept here, or asked of
        the account that keeps it (``may_use`` raises when the key may not use
        the model it was made with)."""
        max_age = config.responses.max_age
        kept = await self.store.aget(key_id, response_id, now=self.wall_clock(), max_age=max_age)
        if kept is not None:
            return json_response(200, kept.response)
        return await self._relayed("GET", key_id, response_id, config, may_use)

    async def delete(
        self, key_id: str, response_id: str, config: Config, may_use: Callable[[str], None]
    ) -> Response:
        if await self.store.adelete(key_id, response_id):
            return json_response(200, {"id": response_id, "object": "response", "deleted": True})
        response = await self._relayed("DELETE", key_id, response_id, config, may_use)
        if response.status == 200:
            await self.store.aforget_owner(key_id, response_id)
        return response

    async def _relayed(
        self,
        method: str,
        key_id: str,
        response_id: str,
        config: Config,
        may_use: Callable[[str], None],
    ) -> Response:
        owner = await self.store.aowner(
            key_id, response_id, now=self.wall_clock(), max_age=config.responses.max_age
        )
        account = None if owner is None else config.account_by_id(owner.account_id)
        if owner is None or account is None or self.relay is None:
            raise _not_found(response_id)
        may_use(owner.model)
        return await self.relay.send(method, account, response_id, owner.model, config)


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


class _Turn:
    """One answered turn, saved once its whole response is known."""

    def __init__(
        self,
        chains: ResponseChains,
        call: ClientCall,
        key_id: str,
        account_id: str,
        config: Config,
        passthrough: bool,
    ):
        self.chains = chains
        self.call = call
        self.key_id = key_id
        self.account_id = account_id
        self.config = config
        self.passthrough = passthrough
        self.owner_known = False

    async def answered(self, body: bytes) -> None:
        try:
            response = json.loads(body)
        except ValueError:
            return
        if isinstance(response, dict):
            await self.finished(response)

    async def started(self, response: dict[str, Any]) -> None:
        """A passthrough stream named its response: its account is remembered at
        once (a later turn may name it before this stream ends)."""
        ident = response.get("id")
        if self.passthrough and isinstance(ident, str) and not self.owner_known:
            self.owner_known = True
            owner = ChainOwner(self.account_id, self.call.model)
            await self.chains.remember_owner(self.key_id, ident, owner, self.config)

    async def finished(self, response: dict[str, Any]) -> None:
        ident = response.get("id")
        if not isinstance(ident, str):
            return
        if self.passthrough:
            await self.started(response)
            return
        output = response.get("output")
        record = StoredResponse(
            id=ident,
            account_id=self.account_id,
            created=self.chains.wall_clock(),
            input_items=tuple(_items(self.call.body.get("input"))),
            output_items=tuple(output if isinstance(output, list) else ()),
            response=response,
        )
        limits = self.config.responses
        try:
            await self.chains.store.aput(
                self.key_id, record, max_stored=limits.max_stored, max_age=limits.max_age
            )
        except (OSError, ValueError, sqlite3.Error, SecretKeyError) as error:
            # the answer stands; only its chain is lost
            log.warning("could not keep a response", extra={"reason": str(error)})


class _Watched:
    """A Responses stream passed on as it is, its lifecycle events read on the way."""

    def __init__(self, body: AsyncIterable[bytes], turn: _Turn):
        self.body = body
        self.turn = turn
        self.decoder = SSEDecoder()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        final: dict[str, Any] | None = None
        watching = True
        async for chunk in self.body:
            yield chunk
            if not watching:
                continue
            try:
                events = self.decoder.feed(chunk)
            except SSEError as error:  # an event too large to read: the turn is not kept
                log.warning("could not keep a streamed response", extra={"reason": error.message})
                watching = False
                continue
            for event in events:
                final = await self._read(event) or final
        if watching and final is not None:
            await self.turn.finished(final)

    async def _read(self, event: SSEEvent) -> dict[str, Any] | None:
        if event.event not in _TERMINAL and event.event != "response.created":
            return None
        try:
            data = json.loads(event.data)
        except ValueError:
            return None
        response = data.get("response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            return None
        if event.event == "response.created":
            await self.turn.started(response)
            return None
        return response

    async def aclose(self) -> None:
        aclose = getattr(self.body, "aclose", None)
        if aclose is not None:
            await aclose()
