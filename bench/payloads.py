"""The fixed requests and upstream answers every benchmark scenario uses.

Theory of operation: a benchmark *path* is a (client format, upstream format)
pair; a *mode* is non-streaming ("json") or streaming ("sse"). The upstream
stub serves one pre-generated answer per (upstream format, mode), and the
gateway routes to it by model name: each (upstream format, mode) has its own
model name and its own upstream account (see ``MODELS``), so one gateway
configuration serves the whole matrix and same-format requests pass through
untouched (the stub answers with the model name the client asked for).

Every answer carries the same text, ``TEXT``: twenty content chunks
(``CHUNKS``), joined for non-streaming answers, one SSE event each for
streams. Checks (``checks.py``) reassemble it from whatever the gateway sends
back, in the client's format.

Nothing here does I/O; the stub and the load generator write these bytes to
files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANTHROPIC",
    "CHUNKS",
    "FORMATS",
    "GEMINI",
    "MODELS",
    "MODES",
    "OPENAI",
    "TEXT",
    "Route",
    "api_path",
    "client_request",
    "endpoint",
    "stub_answer",
    "stub_events",
    "stub_location",
    "usage_option_request",
    "wrk_markers",
]

OPENAI = "openai"
ANTHROPIC = "anthropic"
GEMINI = "gemini"  # an upstream format only: the gateway's clients here are the other two
FORMATS = (OPENAI, ANTHROPIC, GEMINI)
MODES = ("json", "sse")

CHUNKS = tuple(f"Chunk {i:02d} of the benchmark answer; " for i in range(1, 21))
TEXT = "".join(CHUNKS)
INPUT_TOKENS = 57
OUTPUT_TOKENS = len(CHUNKS)
CREATED = 1_760_000_000

#: (upstream format, mode) -> the model name that routes there
MODELS = {
    (OPENAI, "json"): "gpt-bench",
    (OPENAI, "sse"): "gpt-bench-sse",
    (ANTHROPIC, "json"): "claude-bench",
    (ANTHROPIC, "sse"): "claude-bench-sse",
    (GEMINI, "json"): "gemini-bench",
    (GEMINI, "sse"): "gemini-bench-sse",
}

_SYSTEM = "You are a concise assistant. Answer in plain prose without lists."
_QUESTION = (
    "I am comparing two approaches to caching database query results in a web "
    "service: a per-process LRU cache and a shared Redis cache. The service runs "
    "eight worker processes behind a load balancer, and most queries are reads "
    "that tolerate a few seconds of staleness. Which approach would you pick, "
    "and what are the main risks?"
)


@dataclass(frozen=True, slots=True)
class Route:
    """A client format talking through the gateway to an upstream format."""

    client: str
    upstream: str

    @property
    def label(self) -> str:
        return f"{self.client}→{self.upstream}"

    @property
    def same_format(self) -> bool:
        return self.client == self.upstream


def endpoint(fmt: str) -> str:
    """The gateway path (and the stub's path suffix) a format's clients POST to."""
    return "/v1/chat/completions" if fmt == OPENAI else "/v1/messages"


def api_path(fmt: str, mode: str) -> str:
    """The API path after an upstream account's base URL (Gemini's names the model)."""
    if fmt == GEMINI:
        method = "streamGenerateContent" if mode == "sse" else "generateContent"
        return f"/models/{MODELS[(fmt, mode)]}:{method}"
    return endpoint(fmt).removeprefix("/v1") if fmt == OPENAI else endpoint(fmt)


def client_headers(fmt: str, key: str) -> dict[str, str]:
    """The headers a format's clients send with gateway key ``key``."""
    if fmt == OPENAI:
        return {"content-type": "application/json", "authorization": f"Bearer {key}"}
    if fmt == GEMINI:
        return {"content-type": "application/json", "x-goog-api-key": key}
    return {"content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}


def stub_location(upstream: str, mode: str) -> str:
    """The stub's base URL path for one answer (what an upstream account's base URL ends in)."""
    base = f"/{upstream}/{mode}"
    if upstream == GEMINI:
        return base + "/v1beta"
    return base + "/v1" if upstream == OPENAI else base


def client_request(fmt: str, model: str, stream: bool) -> bytes:
    """A realistic small chat request in ``fmt``, asking for ``model``.

    OpenAI streaming requests ask for usage (``stream_options.include_usage``)
    as usage-tracking clients do; without it the gateway adds the option and
    takes its rewrite path instead of plain passthrough (see ``usage_option``).
    """
    return _request(fmt, model, stream, include_usage=True)


def usage_option_request(model: str) -> bytes:
    """An OpenAI streaming request without ``stream_options`` (the SDK's default)."""
    return _request(OPENAI, model, True, include_usage=False)


def _request(fmt: str, model: str, stream: bool, *, include_usage: bool) -> bytes:
    body: dict[str, Any]
    if fmt == GEMINI:  # the model is in the path, the stream in the method
        body = {
            "contents": [{"role": "user", "parts": [{"text": _QUESTION}]}],
            "systemInstruction": {"parts": [{"text": _SYSTEM}]},
            "generationConfig": {"maxOutputTokens": 512, "temperature": 0.2},
        }
    elif fmt == OPENAI:
        body = {
            "model": model,
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": _QUESTION},
            ],
            "max_tokens": 512,
            "temperature": 0.2,
        }
        if stream:
            body["stream"] = True
            if include_usage:
                body["stream_options"] = {"include_usage": True}
    else:
        body = {
            "model": model,
            "max_tokens": 512,
            "system": _SYSTEM,
            "messages": [{"role": "user", "content": _QUESTION}],
            "temperature": 0.2,
        }
        if stream:
            body["stream"] = True
    return _dumps(body).encode()


def stub_answer(upstream: str, mode: str) -> bytes:
    """The stub's fixed answer for one (upstream format, mode)."""
    model = MODELS[(upstream, mode)]
    if upstream == GEMINI:
        return _gemini_sse(model) if mode == "sse" else _gemini_json(model)
    if upstream == OPENAI:
        return _openai_sse(model) if mode == "sse" else _openai_json(model)
    return _anthropic_sse(model) if mode == "sse" else _anthropic_json(model)


def wrk_markers(client: str, stream: bool) -> tuple[str, ...]:
    """Strings every good response body in ``client``'s format contains (checked in wrk).

    The last chunk's text proves the content got through; for streams the
    format's terminal event proves the stream ended properly.
    """
    last = json.dumps(CHUNKS[-1])[1:-1]
    if not stream:
        return (json.dumps(TEXT)[1:-1],)
    if client == GEMINI:
        return (last, '"finishReason":"STOP"')
    return (last, "data: [DONE]" if client == OPENAI else "event: message_stop")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _openai_usage() -> dict[str, int]:
    return {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    }


def _openai_json(model: str) -> bytes:
    body = {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(),
        "system_fingerprint": "fp_bench",
    }
    return _dumps(body).encode()


def _openai_sse(model: str) -> bytes:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body = {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": choices,
            "usage": usage,
        }
        return f"data: {_dumps(body)}\n\n"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    events = [chunk(choice({"role": "assistant", "content": "", "refusal": None}))]
    events += [chunk(choice({"content": text})) for text in CHUNKS]
    events.append(chunk(choice({}, "stop")))
    events.append(chunk([], _openai_usage()))
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def _anthropic_json(model: str) -> bytes:
    body = {
        "id": "msg_bench0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    }
    return _dumps(body).encode()


def _anthropic_sse(model: str) -> bytes:
    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {_dumps({'type': name, **data})}\n\n"

    message: dict[str, Any] = {
        "id": "msg_bench0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
    }
    events = [event("message_start", {"message": message})]
    events.append(
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    )
    events.append(event("ping", {}))
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
        for text in CHUNKS
    ]
    events.append(event("content_block_stop", {"index": 0}))
    events.append(
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
        )
    )
    events.append(event("message_stop", {}))
    return "".join(events).encode()


def _gemini_usage(final: bool) -> dict[str, int]:
    output = OUTPUT_TOKENS if final else 0
    usage = {"promptTokenCount": INPUT_TOKENS, "totalTokenCount": INPUT_TOKENS + output}
    if final:
        usage["candidatesTokenCount"] = OUTPUT_TOKENS
    return usage


def _gemini_response(text: str, model: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if final:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": _gemini_usage(final),
        "modelVersion": model,
        "responseId": "bench0001",
    }


def _gemini_json(model: str) -> bytes:
    return _dumps(_gemini_response(TEXT, model, True)).encode()


def _gemini_sse(model: str) -> bytes:
    """``:streamGenerateContent?alt=sse``: a whole response per event (CRLF-framed, as
    Google sends them), the last with ``finishReason`` and the final usage."""
    last = len(CHUNKS) - 1
    events = [
        f"data: {_dumps(_gemini_response(text, model, i == last))}\r\n\r\n"
        for i, text in enumerate(CHUNKS)
    ]
    return "".join(events).encode()


def stub_events(upstream: str) -> list[bytes]:
    """The streaming answer for ``upstream`` split into its SSE events (for slow stubs)."""
    end = b"\r\n\r\n" if upstream == GEMINI else b"\n\n"
    return [part + end for part in stub_answer(upstream, "sse").split(end) if part]
