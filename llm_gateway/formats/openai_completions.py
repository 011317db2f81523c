"""OpenAI legacy Completions (``POST /v1/completions``) <-> unified representation.

Theory of operation: a completions request is one prompt and sampling
parameters. ``parse_request`` turns the prompt into a single USER message
with one text part; ``render_request`` accepts only requests of that shape
(anything richer -- history, system text, tools, images -- has no prompt
form without guessing a model's chat template, so it is refused).

Policy (docs/conversion.md): a list of several prompts is a batch (one
choice per prompt) and is refused like ``n > 1``; token-id prompts, ``echo``,
``suffix``, ``best_of > 1`` and ``logprobs`` are refused; the legacy default
of 16 max tokens is not applied (the target's default applies).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats import openai_family, policy
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.ids import response_id
from llm_gateway.formats.unified import (
    ChatRequest,
    ChatResponse,
    Message,
    Role,
    TextPart,
)
from llm_gateway.formats.validate import RequestShape

__all__ = [
    "ID_PREFIX",
    "REQUEST_SHAPE",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_request",
    "render_response",
]

#: the style of this format's response ids
ID_PREFIX = "cmpl-"
#: what every request of this format must look like (checked before any upstream call)
REQUEST_SHAPE = RequestShape(messages=None, roles=frozenset(), prompt="prompt", lists=())

NAME = "openai-completions"

render_error = openai_family.render_error
parse_error = openai_family.parse_error

_REQUEST_FIELDS = openai_family.SAMPLING_FIELDS | frozenset(
    ("model", "prompt", "max_tokens", "logprobs", "echo", "suffix", "best_of")
)


# -- requests -------------------------------------------------------------------------


def parse_request(body: object) -> ChatRequest:
    """Completions request JSON -> ChatRequest. Raises InvalidRequest naming the bad field."""
    r = FieldReader(body)
    for key in r.present_keys():
        if key not in _REQUEST_FIELDS:
            policy.dropped(key, "unknown OpenAI completions field")
    if r.opt_int("logprobs") is not None:
        raise policy.unsupported("logprobs", "log probabilities are not converted")
    if r.opt_bool("echo"):
        raise policy.unsupported("echo", "echoing the prompt is not converted")
    if r.opt_str("suffix"):
        raise policy.unsupported("suffix", "insertion (suffix) has no chat counterpart")
    best_of = r.opt_int("best_of", minimum=1)
    if best_of is not None and best_of > 1:
        raise policy.unsupported("best_of", "server-side best-of sampling is not converted")
    s = openai_family.parse_sampling(r, r.opt_int("max_tokens", minimum=1))
    return ChatRequest(
        model=r.req_str("model"),
        messages=(Message(Role.USER, (TextPart(_prompt(r)),)),),
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        top_p=s.top_p,
        stop=s.stop,
        stream=s.stream,
        stream_include_usage=s.stream_include_usage,
        user=s.user,
        seed=s.seed,
        frequency_penalty=s.frequency_penalty,
        presence_penalty=s.presence_penalty,
        logit_bias=s.logit_bias,
        service_tier=s.service_tier,
    )


def _prompt(r: FieldReader) -> str:
    prompt = r.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        if len(prompt) == 1:
            return str(prompt[0])
        if not prompt:
            raise InvalidRequest("prompt must not be empty", param="prompt")
        raise policy.unsupported("prompt", "several prompts are a batch (like n > 1); send one")
    if isinstance(prompt, list):
        raise policy.unsupported("prompt", "token-id prompts are model-specific")
    if prompt is None:
        raise InvalidRequest("prompt is required", param="prompt")
    raise InvalidRequest("prompt must be a string or an array of strings", param="prompt")


def render_request(req: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> completions request JSON (single-prompt requests only)."""
    if req.system or len(req.messages) != 1 or req.messages[0].role is not Role.USER:
        raise policy.unsupported(
            "messages", "a completions upstream takes one user prompt, not a conversation"
        )
    parts = req.messages[0].parts
    if not all(isinstance(p, TextPart) for p in parts):
        raise policy.unsupported("messages[0].content", "a completions prompt is text only")
    if req.tools:
        raise policy.unsupported("tools", "a completions upstream cannot call tools")
    out: dict[str, Any] = {
        "model": req.model,
        "prompt": "".join(p.text for p in parts if isinstance(p, TextPart)),
    }
    openai_family.render_sampling(req, out, "max_tokens")
    if out.pop("service_tier", None) is not None:
        policy.dropped("service_tier", "the completions API has no service tiers")
    for name in ("tool_choice", "parallel_tool_calls", "response_format", "reasoning"):
        if getattr(req, name) is not None:
            policy.dropped(name, "the completions API has no counterpart")
    return out


# -- responses -------------------------------------------------------------------------


def parse_response(body: object) -> ChatResponse:
    """Completion JSON -> ChatResponse. Raises UpstreamError if malformed."""
    r, choice = openai_family.first_choice(body)
    text = choice.opt_str("text") or ""
    return ChatResponse(
        id=r.req_str("id"),
        model=r.opt_str("model") or "",
        parts=(TextPart(text),) if text else (),
        stop_reason=openai_family.stop_reason(choice.opt_str("finish_reason")),
        usage=openai_family.parse_usage(r.opt_obj("usage")),
        created=r.opt_int("created") or 0,
    )


def render_response(resp: ChatResponse, *, model: str) -> dict[str, Any]:
    """ChatResponse -> ``text_completion`` JSON, reporting ``model`` (the client's name).

    Only text is carried; a completions client never offered tools, and
    reasoning text has no field here.
    """
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    if len(resp.parts) != sum(isinstance(p, TextPart) for p in resp.parts):
        policy.dropped("non-text output", "the completions format carries text only")
    return {
        "id": response_id(ID_PREFIX, resp.id),
        "object": "text_completion",
        "created": resp.created,
        "model": model,
        "choices": [
            {
                "text": text,
                "index": 0,
                "logprobs": None,
                "finish_reason": openai_family.finish_reason(resp.stop_reason),
            }
        ],
        "usage": openai_family.render_usage(resp.usage),
    }
