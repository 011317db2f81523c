"""Azure OpenAI answers for ``fake_upstream.FakeUpstream``, shaped like Azure's.

Azure speaks OpenAI's chat completions with additions: ``prompt_filter_results``
on answers, ``content_filter_results`` on each choice, and in streams a first
chunk with an empty ``choices`` list, an empty id and model, carrying only the
prompt's filter results. ``answering_azure`` answers each request that way
(JSON or SSE as it asked, the model being the deployment's underlying model,
as Azure reports it); ``azure_filtered_stream`` is a stream its content filter
cuts short (``finish_reason: content_filter``); ``azure_prompt_filtered`` is
the 400 Azure answers a blocked prompt with; ``azure_error`` its error shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fake_upstream import (
    Answer,
    Received,
    Reply,
    Respond,
    Stream,
    json_reply,
    openai_chat_completion,
    openai_chat_events,
    sse,
)

AZURE_UPSTREAM_KEY = "0123456789abcdef0123456789abcdef"
#: what Azure reports as the model behind a deployment
UNDERLYING_MODEL = "gpt-4o-2024-11-20"

_SAFE = {"filtered": False, "severity": "safe"}
FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}]


def azure_completion(answer: Answer) -> dict[str, Any]:
    body = openai_chat_completion(answer, UNDERLYING_MODEL)
    body["prompt_filter_results"] = PROMPT_FILTER_RESULTS
    body["system_fingerprint"] = "fp_azure01"
    for choice in body["choices"]:
        choice["content_filter_results"] = FILTER_RESULTS
    return body


def _first_chunk() -> bytes:
    """Azure's first stream chunk: no choices, only the prompt's filter results."""
    return sse(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
        }
    )


def _with_filter_results(event: bytes) -> bytes:
    text = event.decode().removeprefix("data: ").strip()
    if text == "[DONE]":
        return event
    chunk = json.loads(text)
    for choice in chunk["choices"]:
        choice["content_filter_results"] = FILTER_RESULTS if choice["delta"] else {}
    return sse(chunk)


def azure_events(answer: Answer, include_usage: bool) -> list[bytes]:
    events = openai_chat_events(answer, UNDERLYING_MODEL, include_usage)
    return [_first_chunk(), *(_with_filter_results(e) for e in events)]


def azure_filtered_stream(text: str) -> Stream:
    """A stream whose answer Azure's content filter stops after ``text``."""
    events = azure_events(Answer(text=text), include_usage=False)
    # the finish chunk (before [DONE]) says the filter stopped the answer
    finish = json.loads(events[-2].decode().removeprefix("data: "))
    finish["choices"][0]["finish_reason"] = "content_filter"
    finish["choices"][0]["content_filter_results"] = {
        **FILTER_RESULTS,
        "violence": {"filtered": True, "severity": "medium"},
    }
    return Stream([*events[:-2], sse(finish), events[-1]])


def answering_azure(answer: Answer) -> Callable[[Received], Reply]:
    def handler(request: Received) -> Reply:
        body = request.json()
        if request.stream:
            options = body.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            return Stream(azure_events(answer, usage))
        return json_reply(azure_completion(answer))

    return handler


def azure_error(
    status: int, code: str, message: str, headers: Sequence[tuple[str, str]] = ()
) -> Respond:
    return json_reply({"error": {"code": code, "message": message}}, status, headers)


PROMPT_FILTERED_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content "
    "management policy. Please modify your prompt and retry."
)


def azure_prompt_filtered() -> Respond:
    """Azure's 400 for a prompt its content filter blocks (its documented shape)."""
    payload = {
        "error": {
            "message": PROMPT_FILTERED_MESSAGE,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **FILTER_RESULTS,
                    "hate": {"filtered": True, "severity": "medium"},
                },
            },
        }
    }
    return json_reply(payload, 400)
