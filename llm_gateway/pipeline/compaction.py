"""Codex's remote compaction on the request path (the shapes: ``formats.responses_compaction``).

Theory of operation, one ``POST /v1/responses``:

1. ``expand``: gateway-made compaction items in the input are opened (the
   summary sealed with the gateway's secret key, bound to the gateway key
   that asked for it) and replaced by their summaries, whatever account the
   request goes to; one that does not open is a 400.
2. ``call_for``, per attempt: a compaction request (input ending with the
   trigger) goes untouched to an account that speaks the Responses API itself
   (OpenAI compacts on its own); any other account gets the summarising
   request instead, not streamed. ``request.notes["compaction"]`` says which
   the last attempt did.
3. ``finish``: a summarised answer becomes the one compaction item Codex
   expects, as JSON or as the event stream the client asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config.schema import UpstreamAccount
from ..crypto.sealing import seal, unseal
from ..errors import InvalidRequest, SecretKeyError, UpstreamError
from ..formats.responses_compaction import (
    carried_summary,
    compaction_item,
    compaction_response,
    expand_compactions,
    is_compaction_request,
    summarising_request,
    summary_of,
)
from ..json_text import dumps_bytes
from ..providers.registry import get_provider
from ..server.messages import Request, Response, json_response
from ..streaming.sse import compact_json, encode_event
from .call import ClientCall

__all__ = ["Compactions", "compaction_stream"]

_NOTE = "compaction"
_SUMMARISED = "summarised"
_SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]


def _context(key_id: str) -> str:
    return f"responses-compaction/{key_id}"


class Compactions:
    """Compaction for accounts that cannot compact; ``secret_key`` seals the summaries."""

    def __init__(self, secret_key: Callable[[], bytes]):
        self._secret_key = secret_key

    def expand(self, request: Request, call: ClientCall, key_id: str) -> ClientCall:
        items = call.body.get("input")
        if not call.endpoint.keeps_responses or not isinstance(items, list):
            return call

        def open_summary(sealed: str) -> str:
            try:
                return unseal(self._secret_key(), sealed, context=_context(key_id))
            except SecretKeyError:
                raise InvalidRequest(
                    "a compaction item in 'input' was not made by this gateway for this "
                    "API key, or was altered; it cannot be read",
                    param="input",
                ) from None

        expanded = expand_compactions(items, open_summary)
        if expanded is None:
            return call
        body = {**call.body, "input": expanded}
        request.body = dumps_bytes(body)
        return replace(call, body=body)

    def call_for(
        self, request: Request, call: ClientCall, account: UpstreamAccount, model: str
    ) -> ClientCall:
        """What to send ``account`` for ``call`` (``model``: the name routed to)."""
        if not call.endpoint.keeps_responses or not is_compaction_request(call.body):
            return call
        provider = get_provider(account.provider)
        upstream_model = account.upstream_model(model)
        _, wire = provider.upstream_operation(account, call.endpoint.operation, upstream_model)
        if wire == call.endpoint.client_format:  # it compacts on its own
            request.notes[_NOTE] = "passthrough"
            return call
        request.notes[_NOTE] = _SUMMARISED
        return replace(call, body=summarising_request(call.body), stream=False)

    def finish(
        self, request: Request, call: ClientCall, key_id: str, response: Response
    ) -> Response:
        """A summarised answer as the compaction Codex expects (anything else as it is)."""
        if request.notes.get(_NOTE) != _SUMMARISED or response.status != 200:
            return response
        assert isinstance(response.body, bytes)  # the summary was asked for whole
        summarised = json.loads(response.body)
        summary = summary_of(summarised)
        if not summary:
            raise UpstreamError(
                "the upstream answered the compaction's summary request with no text"
            )
        sealed = seal(self._secret_key(), summary, context=_context(key_id))
        item = compaction_item(carried_summary(sealed))
        answer = compaction_response(summarised, item, model=call.model)
        extra = [(k, v) for k, v in response.headers if k != "content-type"]
        if call.stream:
            return Response(200, [*_SSE_HEADERS, *extra], compaction_stream(answer))
        return json_response(200, answer, extra)


def compaction_stream(response: dict[str, Any]) -> bytes:
    """``response`` (one compaction item) as the event stream a streaming request
    gets: created, in_progress, the item added and done, completed."""
    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    (item,) = response["output"]
    events = [
        ("response.created", {"response": opening}),
        ("response.in_progress", {"response": opening}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": response}),
    ]
    return b"".join(
        encode_event(compact_json({"type": kind, "sequence_number": n, **data}), kind)
        for n, (kind, data) in enumerate(events)
    )
