"""Same-format passthrough: re-encode upstream events with the client's model name.

Theory of operation: when client and upstream speak the same format, the
gateway forwards the upstream's events instead of converting them, so fields
the unified form does not know survive. Only the model name changes (the
client sees the name it asked for). Each rewriter takes decoded ``SSEEvent``
objects and returns their bytes: events it need not touch are re-encoded
from their original data text, unchanged; events that carry the model are
parsed, patched and dumped again. SSE comments, ``id`` and ``retry`` fields
are dropped (no provider uses them in these APIs).

OpenAI (chat and completions): every chunk has ``model``. With
``strip_usage`` the rewriter also removes what ``stream_options.include_usage``
added when the gateway, not the client, asked for it: the usage chunk (empty
``choices``) is dropped and a ``usage`` key on other chunks removed.

Anthropic: only ``message_start.message.model`` names the model. Events are
told apart by their SSE event name, so the many delta events are never parsed.

A rewriter made with ``model=None`` renames nothing: it only records usage
(and strips it when asked), parsing just the events that can carry it.

With ``id_prefix`` a rewriter also gives the response id the client format's
style (an OpenAI-compatible server's ``cmpl-7`` on a chat stream becomes
``chatcmpl-7``); an id already in that style is kept, and every chunk of one
stream gets the same id. OpenAI chunks are then all parsed.

Both record the latest usage they saw in ``usage`` (unified, cumulative), for
the gateway's accounting, whether or not it reached the client.
"""

from __future__ import annotations

import json

from llm_gateway.formats.unified import Usage
from llm_gateway.streaming.anthropic_messages import usage_from_anthropic
from llm_gateway.streaming.ids import response_id
from llm_gateway.streaming.openai_chat import usage_from_openai
from llm_gateway.streaming.sse import DONE_EVENT, SSEEvent, compact_json, encode_event, is_done

__all__ = ["AnthropicModelRewriter", "OpenAIModelRewriter"]


class OpenAIModelRewriter:
    """OpenAI chat or completions stream: set each chunk's ``model``; optionally strip usage."""

    __slots__ = ("_id", "_id_prefix", "_model", "_strip_usage", "usage")

    def __init__(
        self, *, model: str | None, strip_usage: bool = False, id_prefix: str | None = None
    ) -> None:
        self._model = model
        self._strip_usage = strip_usage
        self._id_prefix = id_prefix
        self._id: str | None = None  # the id this stream's chunks get, once known
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> bytes:
        if is_done(event):
            return DONE_EVENT
        if self._model is None and self._id_prefix is None and '"usage"' not in event.data:
            return encode_event(event.data, event.event)  # nothing to rename or record
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return encode_event(event.data, event.event)
        if not isinstance(chunk, dict):
            return encode_event(event.data, event.event)
        changed = False
        if "usage" in chunk:
            self.usage = usage_from_openai(chunk["usage"]) or self.usage
            if self._strip_usage:
                if not chunk.get("choices"):
                    return b""  # the usage chunk the client did not ask for
                del chunk["usage"]
                changed = True
        if self._model is not None and "model" in chunk and chunk["model"] != self._model:
            chunk["model"] = self._model
            changed = True
        if self._id_prefix is not None and "error" not in chunk:
            changed = self._restyle_id(chunk, self._id_prefix) or changed
        if not changed:
            return encode_event(event.data, event.event)
        return encode_event(compact_json(chunk), event.event)

    def finish(self) -> bytes:
        return b""

    def _restyle_id(self, chunk: dict[str, object], prefix: str) -> bool:
        """Give ``chunk`` the stream's id in ``prefix`` style; True if it changed."""
        given = chunk.get("id")
        if self._id is None:
            self._id = response_id(prefix, given if isinstance(given, str) else None)
        if given == self._id:
            return False
        chunk["id"] = self._id
        return True


class AnthropicModelRewriter:
    """Anthropic message stream: set ``message_start.message.model`` (and its id)."""

    __slots__ = ("_id_prefix", "_model", "usage")

    def __init__(self, *, model: str | None, id_prefix: str | None = None) -> None:
        self._model = model
        self._id_prefix = id_prefix
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> bytes:
        name = event.event
        if name is None or name in ("message_start", "message_delta"):
            try:
                data = json.loads(event.data)
            except ValueError:
                data = None
            if isinstance(data, dict):
                kind = data.get("type")
                if kind == "message_start":
                    return self._message_start(data, event)
                if kind == "message_delta" and isinstance(data.get("usage"), dict):
                    self.usage = usage_from_anthropic(data["usage"], self.usage)
        return encode_event(event.data, name)

    def finish(self) -> bytes:
        return b""

    def _message_start(self, data: dict[str, object], event: SSEEvent) -> bytes:
        message = data.get("message")
        if not isinstance(message, dict):
            return encode_event(event.data, event.event)
        if isinstance(message.get("usage"), dict):
            self.usage = usage_from_anthropic(message["usage"])
        changed = False
        if self._id_prefix is not None:
            given = message.get("id")
            restyled = response_id(self._id_prefix, given if isinstance(given, str) else None)
            if restyled != given:
                message["id"] = restyled
                changed = True
        if self._model is not None and message.get("model") != self._model:
            message["model"] = self._model
            changed = True
        if not changed:
            return encode_event(event.data, event.event)
        return encode_event(compact_json(data), event.event)
