"""What OpenAI chat completions and legacy completions have in common.

Theory of operation: both OpenAI formats share their sampling parameters,
``finish_reason`` vocabulary, ``usage`` object and error shape. The two codecs
call these helpers so the rules live once:

* Sampling fields parse into / render from the same ``ChatRequest`` slots.
  ``n > 1`` and ``logprobs`` are refused (the unified response carries one
  choice and no log probabilities); see docs/conversion.md.
* Usage: OpenAI ``prompt_tokens`` INCLUDES cached tokens
  (``prompt_tokens_details.cached_tokens``); unified ``input_tokens`` excludes
  them. ``prompt = input + cache_read + cache_write``.
* Errors: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_gateway.errors import UpstreamError
from llm_gateway.formats import policy
from llm_gateway.formats.error_relay import decode_json, kind_for_status, relay_message
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.unified import ChatRequest, JSONValue, StopReason, Usage

__all__ = [
    "Sampling",
    "finish_reason",
    "parse_error",
    "parse_sampling",
    "parse_usage",
    "render_error",
    "render_sampling",
    "render_usage",
    "stop_reason",
]


# -- sampling parameters ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sampling:
    """The request fields both OpenAI formats share, already type-checked."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    stream: bool
    stream_include_usage: bool
    user: str | None
    seed: int | None
    frequency_penalty: float | None
    presence_penalty: float | None
    logit_bias: JSONValue | None
    service_tier: str | None


# fmt: off
SAMPLING_FIELDS = frozenset((
    "temperature", "top_p", "stop", "stream", "stream_options", "user", "seed",
    "frequency_penalty", "presence_penalty", "logit_bias", "service_tier", "n",
))
# fmt: on


def parse_sampling(r: FieldReader, max_tokens: int | None) -> Sampling:
    n = r.opt_int("n", minimum=1)
    if n is not None and n > 1:
        raise policy.unsupported("n", "only one choice per request (n=1)")
    options = r.opt_obj("stream_options")
    return Sampling(
        max_tokens=max_tokens,
        temperature=r.opt_number("temperature"),
        top_p=r.opt_number("top_p"),
        stop=_parse_stop(r),
        stream=bool(r.opt_bool("stream")),
        stream_include_usage=bool(options.opt_bool("include_usage")) if options else False,
        user=r.opt_str("user"),
        seed=r.opt_int("seed"),
        frequency_penalty=r.opt_number("frequency_penalty"),
        presence_penalty=r.opt_number("presence_penalty"),
        logit_bias=r.opt_json_object("logit_bias"),
        service_tier=r.opt_str("service_tier"),
    )


def _parse_stop(r: FieldReader) -> tuple[str, ...]:
    stop = r.get("stop")
    if isinstance(stop, str):
        return (stop,)
    return tuple(r.str_list("stop"))


def render_sampling(req: ChatRequest, out: dict[str, Any], max_tokens_field: str) -> None:
    """Write the shared sampling fields of ``req`` into ``out``."""
    if req.max_tokens is not None:
        out[max_tokens_field] = req.max_tokens
    for name in ("temperature", "top_p"):
        if getattr(req, name) is not None:
            out[name] = getattr(req, name)
    if req.stop:
        out["stop"] = list(req.stop)
    if req.stream:
        out["stream"] = True
        # Only what the client asked for (Anthropic clients always get usage); the
        # pipeline adds include_usage per upstream quirk and strips it again.
        if req.stream_include_usage:
            out["stream_options"] = {"include_usage": True}
    if req.user is not None:
        out["user"] = req.user
    for name in ("seed", "frequency_penalty", "presence_penalty"):
        if getattr(req, name) is not None:
            out[name] = getattr(req, name)
    if req.logit_bias is not None:
        out["logit_bias"] = req.logit_bias.value()
    if req.service_tier is not None:
        out["service_tier"] = "default" if req.service_tier == "standard_only" else req.service_tier
    if req.top_k is not None:
        policy.dropped("top_k", "OpenAI has no top_k")


# -- finish reasons -------------------------------------------------------------------

_FROM_FINISH = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.REFUSAL,
}
_TO_FINISH = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.PAUSE_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.REFUSAL: "content_filter",
}


def stop_reason(finish: str | None) -> StopReason | None:
    """OpenAI finish_reason -> StopReason (unknown values read as END_TURN)."""
    if finish is None:
        return None
    return _FROM_FINISH.get(finish, StopReason.END_TURN)


def finish_reason(reason: StopReason | None) -> str | None:
    return _TO_FINISH[reason] if reason is not None else None


# -- usage ------------------------------------------------------------------------------


def first_choice(body: object) -> tuple[FieldReader, FieldReader]:
    """The response reader and its first choice (later choices are dropped, logged)."""
    r = FieldReader(body, error=UpstreamError)
    choices = r.req_list("choices")
    if not choices:
        raise UpstreamError("upstream response has no choices", param="choices")
    if len(choices) > 1:
        policy.dropped("choices[1:]", "only the first choice is converted")
    return r, r.child(choices[0], "choices[0]")


def parse_usage(u: FieldReader | None) -> Usage:
    if u is None:
        return Usage()
    prompt = u.opt_int("prompt_tokens") or 0
    details = u.opt_obj("prompt_tokens_details")
    cached = details.opt_int("cached_tokens") if details is not None else None
    if cached is None:
        cached = u.opt_int("prompt_cache_hit_tokens")  # DeepSeek's spelling
    cached = min(cached or 0, prompt)
    completion_details = u.opt_obj("completion_tokens_details")
    reasoning = completion_details.opt_int("reasoning_tokens") if completion_details else None
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=u.opt_int("completion_tokens") or 0,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning or 0,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# -- errors -------------------------------------------------------------------------------

# neutral kind -> (OpenAI error type, code)
_ERROR_SHAPES: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", "permission_denied"),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "overloaded_error": ("service_unavailable_error", "server_is_overloaded"),
    "timeout_error": ("server_error", "timeout"),
    "api_error": ("server_error", None),
}
# OpenAI code or type -> neutral kind
_KIND_BY_CODE = {
    "invalid_api_key": "authentication_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "server_is_overloaded": "overloaded_error",
    "service_unavailable_error": "overloaded_error",
    "timeout": "timeout_error",
}


def render_error(status: int, kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    shape = _ERROR_SHAPES.get(kind)
    if shape is None:
        shape = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    return {"error": {"message": message, "type": shape[0], "param": param, "code": shape[1]}}


def parse_error(status: int, body: bytes) -> tuple[str, str]:
    data = decode_json(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):  # some compatible servers send {"error": "text"}
        return kind_for_status(status), relay_message(error, status)
    if not isinstance(error, dict):
        # Azure's gateway answers some errors (a wrong key, an unknown
        # resource) as {"statusCode": 401, "message": "..."}
        message = data.get("message") if isinstance(data, dict) else None
        text = message if isinstance(message, str) else None
        return kind_for_status(status), relay_message(text, status)
    kind = kind_for_status(status)
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value in _KIND_BY_CODE:
            kind = _KIND_BY_CODE[value]
            break
    message = error.get("message")
    return kind, relay_message(message if isinstance(message, str) else None, status)
