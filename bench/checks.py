"""Is a response body the right answer, in the client's format? (not only a 200)

Theory of operation: ``check_response`` takes what came back for one request
(status, content type, body bytes) and returns a list of problems, empty when
the answer is right:

* non-streaming: JSON in the client's format (OpenAI ``chat.completion`` or
  Anthropic ``message``) whose text is exactly ``payloads.TEXT``, whose model
  is the one the client asked for, with a normal stop reason;
* streaming: ``text/event-stream`` whose events are the client format's
  (OpenAI ``chat.completion.chunk`` objects then ``data: [DONE]``; Anthropic
  ``message_start`` ... ``message_stop``), every event naming the client's
  model where the format carries it, with exactly the twenty chunks whose text
  reassembles ``payloads.TEXT``.

The load generator cannot afford this per request; it checks marker strings
instead (``payloads.wrk_markers``). These checks run on a few requests before
every measured row.
"""

from __future__ import annotations

import json
from typing import Any

from payloads import CHUNKS, GEMINI, OPENAI, TEXT

__all__ = ["check_response", "parse_sse"]


def check_response(
    client: str, stream: bool, model: str, status: int, content_type: str, body: bytes
) -> list[str]:
    if status != 200:
        return [f"status {status}: {body[:200]!r}"]
    if stream:
        if not content_type.startswith("text/event-stream"):
            return [f"content-type {content_type!r} for a stream"]
        if client == GEMINI:
            return _check_gemini_sse(body, model)
        return (
            _check_openai_sse(body, model)
            if client == OPENAI
            else _check_anthropic_sse(body, model)
        )
    if not content_type.startswith("application/json"):
        return [f"content-type {content_type!r} for a JSON answer"]
    try:
        data = json.loads(body)
    except ValueError as exc:
        return [f"body is not JSON ({exc}): {body[:200]!r}"]
    if not isinstance(data, dict):
        return [f"body is not a JSON object: {body[:200]!r}"]
    if client == GEMINI:
        return _check_gemini_json(data, model)
    return (
        _check_openai_json(data, model) if client == OPENAI else _check_anthropic_json(data, model)
    )


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of a complete SSE body (enough of the spec for these bodies)."""
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    data: list[str] = []
    for line in body.decode("utf-8").replace("\r\n", "\n").split("\n"):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:
        events.append((name, "\n".join(data)))
    return events


def _check_openai_json(data: dict[str, Any], model: str) -> list[str]:
    problems = []
    if data.get("object") != "chat.completion":
        problems.append(f"object is {data.get('object')!r}")
    if data.get("model") != model:
        problems.append(f"model is {data.get('model')!r}, expected {model!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return [*problems, f"choices: {choices!r}"]
    message = choices[0].get("message", {})
    if message.get("role") != "assistant" or message.get("content") != TEXT:
        problems.append(f"message: {message!r}")
    if choices[0].get("finish_reason") != "stop":
        problems.append(f"finish_reason {choices[0].get('finish_reason')!r}")
    if not isinstance(data.get("usage"), dict):
        problems.append("no usage")
    return problems


def _check_anthropic_json(data: dict[str, Any], model: str) -> list[str]:
    problems = []
    if data.get("type") != "message" or data.get("role") != "assistant":
        problems.append(f"type/role {data.get('type')!r}/{data.get('role')!r}")
    if data.get("model") != model:
        problems.append(f"model is {data.get('model')!r}, expected {model!r}")
    if data.get("content") != [{"type": "text", "text": TEXT}]:
        problems.append(f"content: {data.get('content')!r}")
    if data.get("stop_reason") != "end_turn":
        problems.append(f"stop_reason {data.get('stop_reason')!r}")
    if not isinstance(data.get("usage"), dict):
        problems.append("no usage")
    return problems


def _check_openai_sse(body: bytes, model: str) -> list[str]:
    events = parse_sse(body)
    if not events or events[-1][1] != "[DONE]":
        return [f"stream does not end with [DONE]: {body[-200:]!r}"]
    problems = []
    pieces: list[str] = []
    finish = None
    for name, data in events[:-1]:
        if name is not None:
            problems.append(f"named event {name!r} in an OpenAI stream")
        chunk = json.loads(data)
        if chunk.get("object") != "chat.completion.chunk" or chunk.get("model") != model:
            problems.append(f"chunk object/model {chunk.get('object')!r}/{chunk.get('model')!r}")
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
            finish = choice.get("finish_reason") or finish
    if finish != "stop":
        problems.append(f"finish_reason {finish!r}")
    return problems + _check_pieces(pieces)


def _check_anthropic_sse(body: bytes, model: str) -> list[str]:
    events = parse_sse(body)
    names = [name for name, _ in events]
    if not names or names[0] != "message_start" or names[-1] != "message_stop":
        return [f"stream events {names[:3]}...{names[-3:]}: not message_start ... message_stop"]
    problems = []
    pieces: list[str] = []
    stop = None
    for name, data in events:
        payload = json.loads(data)
        if payload.get("type") != name:
            problems.append(f"event {name!r} carries type {payload.get('type')!r}")
        if name == "message_start" and payload["message"].get("model") != model:
            problems.append(f"model is {payload['message'].get('model')!r}, expected {model!r}")
        elif name == "content_block_delta" and payload["delta"].get("type") == "text_delta":
            pieces.append(payload["delta"]["text"])
        elif name == "message_delta":
            stop = payload["delta"].get("stop_reason")
    if stop != "end_turn":
        problems.append(f"stop_reason {stop!r}")
    return problems + _check_pieces(pieces)


def _gemini_text(data: dict[str, Any], model: str, problems: list[str]) -> tuple[str, object]:
    """The text of a ``GenerateContentResponse``'s one candidate, and its finish reason."""
    if data.get("modelVersion") != model:
        problems.append(f"modelVersion is {data.get('modelVersion')!r}, expected {model!r}")
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or len(candidates) != 1:
        problems.append(f"candidates: {candidates!r}")
        return "", None
    parts = (candidates[0].get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return text, candidates[0].get("finishReason")


def _check_gemini_json(data: dict[str, Any], model: str) -> list[str]:
    problems: list[str] = []
    text, finish = _gemini_text(data, model, problems)
    if text != TEXT:
        problems.append(f"text: {text[:120]!r}")
    if finish != "STOP":
        problems.append(f"finishReason {finish!r}")
    if not isinstance(data.get("usageMetadata"), dict):
        problems.append("no usageMetadata")
    return problems


def _check_gemini_sse(body: bytes, model: str) -> list[str]:
    problems: list[str] = []
    pieces: list[str] = []
    finish = None
    for name, data in parse_sse(body):
        if name is not None:
            problems.append(f"named event {name!r} in a Gemini stream")
        text, finish = _gemini_text(json.loads(data), model, problems)
        if text:
            pieces.append(text)
    if finish != "STOP":
        problems.append(f"last finishReason {finish!r}")
    return problems + _check_pieces(pieces)


def _check_pieces(pieces: list[str]) -> list[str]:
    if "".join(pieces) != TEXT:
        return [f"reassembled text differs: {''.join(pieces)[:120]!r}..."]
    if len(pieces) != len(CHUNKS):
        return [f"{len(pieces)} content chunks, expected {len(CHUNKS)}"]
    return []
