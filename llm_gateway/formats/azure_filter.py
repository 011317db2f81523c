"""Azure's content filter blocking a prompt, read as the model refusing.

Azure OpenAI answers a prompt its content filter blocks with a 400 (Azure's
documented shape)::

    {"error": {"code": "content_filter", "param": "prompt", "status": 400,
               "message": "The response was filtered due to the prompt ...",
               "innererror": {"code": "ResponsibleAIPolicyViolation",
                              "content_filter_result": {
                                  "hate": {"filtered": true, "severity": "medium"}, ...}}}}

That is not a malformed request the client could fix by changing a
parameter: the model declined. ``refusal_for_filtered_prompt`` turns it into
the answer OpenAI itself gives for filtered content, in the upstream's
format (``openai-chat``: the reason in ``message.refusal``, ``finish_reason:
content_filter``; ``openai-completions``: no text, the same finish reason),
so every client format's codec renders it as that format's refusal
(Anthropic: ``stop_reason: refusal``). The filtered categories are named;
the body's other fields (and anything secret) are not repeated. Any other
body gives None.
"""

from __future__ import annotations

from typing import Any

from .error_relay import decode_json

__all__ = ["refusal_for_filtered_prompt"]

_REFUSAL = "The request was blocked by the upstream's content filter"


def _filtered_categories(error: dict[str, Any]) -> list[str]:
    inner = error.get("innererror")
    result = inner.get("content_filter_result") if isinstance(inner, dict) else None
    if not isinstance(result, dict):
        return []
    named = []
    for category, verdict in result.items():
        if isinstance(verdict, dict) and verdict.get("filtered") is True:
            severity = verdict.get("severity")
            named.append(f"{category} ({severity})" if isinstance(severity, str) else category)
    return named


def refusal_for_filtered_prompt(
    upstream_format: str, status: int, body: bytes
) -> dict[str, Any] | None:
    """The refusal answer (in ``upstream_format``) a content-filter 400 stands for, or None."""
    if status != 400:
        return None
    data = decode_json(body)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or error.get("code") != "content_filter":
        return None
    categories = _filtered_categories(error)
    reason = f"{_REFUSAL}: {', '.join(categories)}." if categories else _REFUSAL + "."
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if upstream_format == "openai-completions":
        choice: dict[str, Any] = {"text": "", "index": 0, "logprobs": None}
        return {
            "id": "cmpl-filtered",
            "object": "text_completion",
            "created": 0,
            "model": "",
            "choices": [{**choice, "finish_reason": "content_filter"}],
            "usage": usage,
        }
    message = {"role": "assistant", "content": None, "refusal": reason}
    return {
        "id": "chatcmpl-filtered",
        "object": "chat.completion",
        "created": 0,
        "model": "",
        "choices": [{"index": 0, "message": message, "finish_reason": "content_filter"}],
        "usage": usage,
    }
