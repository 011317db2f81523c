"""``GET``/``DELETE /v1/responses/{id}`` for a response an upstream keeps.

Theory of operation: a turn that went untouched to an account speaking the
Responses API itself (OpenAI, or any account declared ``--wire responses``)
is kept by that upstream, with ``store`` true; the gateway remembers only
which account answered it (``store.responses``, ``chains`` rows). Reading or
deleting it is asked of that account, at its Responses address plus
``/{id}``, with its credential. The answer is relayed in OpenAI's shape:
a success with the model the client named, an error as the upstream wrote
it with the account's credential and anything key-shaped masked, a
transport failure as the gateway's own 502 or 504.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from ..config.schema import Config, UpstreamAccount
from ..errors import NotFound
from ..formats.error_relay import Redactor, decode_json
from ..providers.base import Operation
from ..providers.registry import get_provider
from ..server.messages import Response, json_response
from ..upstream.pool import ConnectionPool
from .exchange import account_header, timeouts_of

__all__ = ["KeptRelay"]

_RESPONSE_LIMIT = 64 << 20


class KeptRelay:
    """Sends a kept response's ``GET``/``DELETE`` to the account that keeps it."""

    def __init__(
        self,
        pool: ConnectionPool,
        credential_for: Callable[[UpstreamAccount], Awaitable[str]],
        wire_format: str,
    ):
        self.pool = pool
        self.credential_for = credential_for
        #: the wire format an account must speak to keep Responses turns
        self.wire_format = wire_format

    def keeps(self, account: UpstreamAccount, model: str) -> bool:
        """``account`` serves ``model``'s Responses turns itself (so it keeps them)."""
        provider = get_provider(account.provider)
        upstream_model = account.upstream_model(model)
        _, wire = provider.upstream_operation(account, Operation.RESPONSES, upstream_model)
        return wire == self.wire_format

    async def send(
        self,
        method: str,
        account: UpstreamAccount,
        response_id: str,
        model: str,
        config: Config,
    ) -> Response:
        if not account.enabled or not self.keeps(account, model):
            raise NotFound(
                f"Response with id '{response_id}' not found: the account that keeps it "
                "no longer serves it.",
                param="response_id",
            )
        provider = get_provider(account.provider)
        upstream_model = account.upstream_model(model)
        credential = await self.credential_for(account)
        target = provider.build_target(
            account, credential, Operation.RESPONSES, upstream_model, {}, "", False
        )
        url = target.url.partition("?")
        address = f"{url[0]}/{quote(response_id, safe='')}{url[1]}{url[2]}"
        headers = [(k, v) for k, v in target.headers if k != "content-type"]
        headers.append(("accept", "application/json"))
        upstream = await self.pool.request(
            method,
            address,
            headers=headers,
            timeouts=timeouts_of(config),
            verify_tls=account.verify_tls,
            proxy=account.proxy,
        )
        try:
            data = await upstream.aread(max_bytes=_RESPONSE_LIMIT)
        finally:
            await upstream.aclose()
        named = [account_header(account.name)]
        parsed = decode_json(data)
        if upstream.status >= 400 or not isinstance(parsed, dict):
            body = Redactor.for_credential(credential).body(data)
            return Response(upstream.status, [("content-type", "application/json"), *named], body)
        if isinstance(parsed.get("model"), str):
            parsed["model"] = model
        return json_response(upstream.status, parsed, named)
