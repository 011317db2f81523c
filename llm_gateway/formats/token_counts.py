"""The bodies of the upstreams' own token counters, and their answers.

Theory of operation: a token count is asked for with a chat request that is
never run. The gateway renders that request in the counter's format like any
other (``render_request``), then ``*_count_request`` rewraps the rendered body
as the counter wants it, and ``read_*_count`` takes the number out of the
counter's answer (None when the answer holds none). Each provider names its
pair in its ``TokenCounter`` declaration:

* Anthropic ``POST /v1/messages/count_tokens``: the Messages body less what a
  count does not take (``max_tokens``, sampling, ``stream``); answers
  ``{"input_tokens": N}``.
* Gemini ``POST models/{m}:countTokens``: ``{"generateContentRequest": {"model":
  "models/{m}", ...the generateContent body}}``, so ``systemInstruction`` and
  ``tools`` are counted too (a bare ``contents`` would leave them out);
  answers ``{"totalTokens": N, ...}``.
* OpenAI ``POST /v1/responses/input_tokens``: the Responses API's input
  (``input`` items, ``instructions`` left in the items as system messages,
  ``tools`` in the Responses shape), built from the chat-completions body;
  answers ``{"object": "response.input_tokens", "input_tokens": N}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "anthropic_count_request",
    "gemini_count_request",
    "openai_input_tokens_request",
    "read_anthropic_count",
    "read_gemini_count",
    "read_openai_input_tokens",
]

#: what Anthropic's count_tokens accepts of a Messages body
_ANTHROPIC_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def anthropic_count_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    return {key: body[key] for key in _ANTHROPIC_COUNTED if key in body}


def read_anthropic_count(answer: object) -> int | None:
    return _count(answer.get("input_tokens")) if isinstance(answer, dict) else None


def gemini_count_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    name = model if model.startswith("models/") else f"models/{model}"
    return {"generateContentRequest": {"model": name, **body}}


def read_gemini_count(answer: object) -> int | None:
    return _count(answer.get("totalTokens")) if isinstance(answer, dict) else None


def read_openai_input_tokens(answer: object) -> int | None:
    return _count(answer.get("input_tokens")) if isinstance(answer, dict) else None


#: what ``/v1/responses/input_tokens`` accepts of a Responses body
_OPENAI_COUNTED = (
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "text",
    "previous_response_id",
    "conversation",
    "truncation",
)


def openai_input_tokens_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A Responses body as the ``/v1/responses/input_tokens`` body: what the
    counter accepts of it (no output settings, no ``stream`` or ``store``)."""
    return {"model": model, **{k: body[k] for k in _OPENAI_COUNTED if k in body}}
