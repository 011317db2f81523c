"""Gemini answers for ``fake_upstream.FakeUpstream``, shaped like the Gemini API's.

``gemini_response`` is a ``GenerateContentResponse`` for an ``Answer`` (thought
text with ``thought: true``, function calls whole, the first one carrying
``THOUGHT_SIGNATURE`` as Gemini 3 does, ``usageMetadata`` with thought
tokens); ``gemini_events`` the same as ``:streamGenerateContent?alt=sse``
chunks (text in pieces, function calls whole, ``finishReason`` and usage on
the last chunk). ``answering_gemini`` answers each request by its path, the
way the real API tells streams from JSON; ``gemini_error`` is Google's error
shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fake_upstream import Answer, Received, Reply, Respond, Stream, _text_pieces, json_reply, sse

#: what a Gemini 3 model signs its first function call (and thoughts) with
THOUGHT_SIGNATURE = "CiQBcsjafGj0c2lnbmF0dXJlL2Zvcit0ZXN0cz09"
GEMINI_UPSTREAM_KEY = "AIzaSyFakeUpstreamGeminiKey0123456789ab"

_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _finish(answer: Answer) -> str:
    return "MAX_TOKENS" if answer.stop == "length" else "STOP"


def _usage(answer: Answer) -> dict[str, int]:
    thoughts = 3 if answer.reasoning else 0
    usage = {
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens,
        "totalTokenCount": answer.input_tokens + answer.output_tokens + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _call_parts(answer: Answer, with_ids: bool) -> list[dict[str, Any]]:
    parts = []
    for number, call in enumerate(answer.tool_calls):
        function: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if with_ids:
            function["id"] = call.id
        part: dict[str, Any] = {"functionCall": function}
        if number == 0:
            part["thoughtSignature"] = THOUGHT_SIGNATURE
        parts.append(part)
    return parts


def _thought_part(answer: Answer) -> dict[str, Any]:
    return {"text": answer.reasoning, "thought": True, "thoughtSignature": THOUGHT_SIGNATURE}


def gemini_response(answer: Answer, model: str, *, with_ids: bool = False) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if answer.reasoning:
        parts.append(_thought_part(answer))
    if answer.text:
        parts.append({"text": answer.text})
    parts += _call_parts(answer, with_ids)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": _finish(answer),
                "index": 0,
            }
        ],
        "usageMetadata": _usage(answer),
        "modelVersion": model,
        "responseId": "fakeGeminiResponse1",
    }


def gemini_events(answer: Answer, model: str, *, with_ids: bool = False) -> list[bytes]:
    def chunk(parts: list[dict[str, Any]], last: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last:
            candidate["finishReason"] = _finish(answer)
        body: dict[str, Any] = {"candidates": [candidate]}
        body["usageMetadata"] = (
            _usage(answer) if last else {"promptTokenCount": answer.input_tokens}
        )
        body["modelVersion"] = model
        body["responseId"] = "fakeGeminiResponse1"
        return sse(body)

    events = []
    if answer.reasoning:
        events.append(chunk([_thought_part(answer)]))
    events += [chunk([{"text": piece}]) for piece in _text_pieces(answer.text)]
    for part in _call_parts(answer, with_ids):
        events.append(chunk([part]))
    events.append(chunk([{"text": ""}], last=True))
    return events


def model_of(request: Received) -> str:
    """The model named in a Gemini request path (``/v1beta/models/{model}:method``)."""
    return request.path.rsplit("/", 1)[-1].split(":", 1)[0]


def answering_gemini(answer: Answer, *, with_ids: bool = False) -> Callable[[Received], Reply]:
    def handler(request: Received) -> Reply:
        model = model_of(request)
        if request.path.endswith(":streamGenerateContent"):
            return Stream(gemini_events(answer, model, with_ids=with_ids))
        return json_reply(gemini_response(answer, model, with_ids=with_ids))

    return handler


def gemini_error(status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Respond:
    payload = {"error": {"code": status, "message": message, "status": _STATUS[status]}}
    return json_reply(payload, status, headers)
