"""What an upstream refuses of what the gateway carried for another provider.

Theory of operation: the gateway hides what a provider needs between turns in
the client's own fields (``gemini_carry``: Gemini's signatures in tool-call
ids and in thinking signatures). When a conversation then moves to another
provider (a fallback, a second account), those fields reach an upstream that
has rules of its own for them. Each format declares a ``fit`` function
(``Format.fit_upstream``) that edits a body bound for an upstream in that
format, whether the gateway rendered it or passed the client's body through:

* OpenAI chat refuses a tool-call id longer than 40 characters, and the
  Responses API a ``call_id`` longer than 64; an over-long id is replaced by
  ``formats.ids.short_call_id`` (a digest: the same id always gets the same
  short one), in the assistant's calls and in the tool results alike, so they
  still match; the upstream's next answer brings ids of its own.
* Anthropic checks a thinking block's signature and refuses one it did not
  make. A thinking block signed for Gemini is dropped (the thinking is the
  other model's; sent as text, it would read as the assistant's words). If
  thinking is on and the last assistant message then calls tools without a
  thinking block first, Anthropic would refuse that too (a tool-use loop
  keeps one thinking configuration), so thinking is left off for this
  request. Both are logged (``policy.dropped``). An assistant message left
  with nothing is left out; Anthropic joins the user turns around it.

A fit function never changes its argument: it returns the same object when
nothing needs to change, and a copy with the changes otherwise (a passthrough
body is the client's parsed request, reused for the next candidate). A
passthrough body is walked only when its bytes match the format's
``pattern`` (an id too long, a foreign signature): one scan of the bytes,
about as costly as a substring search, where walking a long conversation's
messages in Python would cost several times more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_gateway.formats import policy
from llm_gateway.formats.gemini_carry import SIGNATURE_PREFIX
from llm_gateway.formats.ids import short_call_id

__all__ = [
    "ANTHROPIC_FIT",
    "NO_FIT",
    "OPENAI_CHAT_CALL_ID_LIMIT",
    "OPENAI_CHAT_FIT",
    "RESPONSES_CALL_ID_LIMIT",
    "RESPONSES_FIT",
    "UpstreamFit",
    "fit_anthropic",
    "fit_openai_chat",
    "fit_responses",
]

#: OpenAI chat: "Invalid 'messages[n].tool_calls[0].id': string too long.
#: Expected a string with maximum length 40"
OPENAI_CHAT_CALL_ID_LIMIT = 40
#: the Responses API: "Invalid 'input[n].call_id': string too long. Expected a
#: string with maximum length 64"
RESPONSES_CALL_ID_LIMIT = 64
#: Responses input items that name a call by ``call_id``
_CALL_ITEMS = frozenset(
    ("function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output")
)
#: thinking signatures the gateway made for another provider
_FOREIGN_SIGNATURES = (SIGNATURE_PREFIX,)

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UpstreamFit:
    """A format's ``fit``, and the ``pattern`` a body's bytes match when it may
    have something to fit (None: never)."""

    fit: Callable[[Body], Body]
    pattern: re.Pattern[bytes] | None = None

    def applies(self, raw: bytes) -> bool:
        return self.pattern is not None and self.pattern.search(raw) is not None


def _unchanged(body: Body) -> Body:
    return body


NO_FIT = UpstreamFit(_unchanged)


# -- OpenAI chat ---------------------------------------------------------------------


def fit_openai_chat(body: Body) -> Body:
    """Tool-call ids over 40 characters, shortened in calls and results alike."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    fitted: list[Any] | None = None
    for index, message in enumerate(messages):
        new = _fit_chat_message(message)
        if new is not message:
            if fitted is None:
                fitted = list(messages)
            fitted[index] = new
    return body if fitted is None else {**body, "messages": fitted}


def _fit_chat_message(message: object) -> object:
    if not isinstance(message, dict):
        return message
    limit = OPENAI_CHAT_CALL_ID_LIMIT
    result_id = message.get("tool_call_id")
    if isinstance(result_id, str) and len(result_id) > limit:
        message = {**message, "tool_call_id": short_call_id(result_id, limit)}
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return message
    fitted = [
        {**call, "id": short_call_id(call["id"], limit)}
        if isinstance(call, dict) and isinstance(call.get("id"), str) and len(call["id"]) > limit
        else call
        for call in calls
    ]
    if any(new is not old for new, old in zip(fitted, calls, strict=True)):
        message = {**message, "tool_calls": fitted}
    return message


#: ``"id"`` or ``"tool_call_id"`` with a value over the limit (other keys ending
#: in ``id`` only cost a walk that changes nothing)
OPENAI_CHAT_FIT = UpstreamFit(
    fit_openai_chat, re.compile(rb'id"\s*:\s*"[^"]{%d}' % (OPENAI_CHAT_CALL_ID_LIMIT + 1))
)


# -- OpenAI Responses ----------------------------------------------------------------


def fit_responses(body: Body) -> Body:
    """``call_id`` values over 64 characters, shortened in calls and outputs alike."""
    items = body.get("input")
    if not isinstance(items, list):
        return body
    limit = RESPONSES_CALL_ID_LIMIT
    fitted: list[Any] | None = None
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("type") not in _CALL_ITEMS:
            continue
        call_id = item.get("call_id")
        if isinstance(call_id, str) and len(call_id) > limit:
            if fitted is None:
                fitted = list(items)
            fitted[index] = {**item, "call_id": short_call_id(call_id, limit)}
    return body if fitted is None else {**body, "input": fitted}


RESPONSES_FIT = UpstreamFit(
    fit_responses, re.compile(rb'call_id"\s*:\s*"[^"]{%d}' % (RESPONSES_CALL_ID_LIMIT + 1))
)


# -- Anthropic -----------------------------------------------------------------------


def fit_anthropic(body: Body) -> Body:
    """Thinking blocks signed for another provider dropped (and thinking left off
    when the last assistant message's tool calls would then lack their thinking)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    fitted: list[Any] | None = None
    for index, message in enumerate(messages):
        new = _without_foreign_thinking(message)
        if new is not message and fitted is None:
            fitted = list(messages[:index])
        if fitted is not None and new is not None:
            fitted.append(new)
    if fitted is None:
        return body
    policy.dropped("thinking", "a thinking block signed for another provider")
    out = {**body, "messages": fitted}
    if _thinking_on(out) and _last_calls_lack_thinking(fitted):
        policy.dropped("thinking", "the tool calls it belongs to were another provider's")
        del out["thinking"]
    return out


def _foreign(block: object) -> bool:
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    return isinstance(signature, str) and signature.startswith(_FOREIGN_SIGNATURES)


def _without_foreign_thinking(message: object) -> object | None:
    """``message`` without thinking signed for another provider; None when nothing
    else is left (Anthropic refuses an empty message, and joins the turns on
    either side of a removed one)."""
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    content = message.get("content")
    if not isinstance(content, list) or not any(_foreign(block) for block in content):
        return message
    kept = [block for block in content if not _foreign(block)]
    return {**message, "content": kept} if kept else None


def _thinking_on(body: Body) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _last_calls_lack_thinking(messages: list[Any]) -> bool:
    """The last assistant message calls tools and does not start with thinking."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return False
        calls = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
        first = content[0]
        starts = isinstance(first, dict) and first.get("type") in ("thinking", "redacted_thinking")
        return calls and not starts
    return False


ANTHROPIC_FIT = UpstreamFit(
    fit_anthropic, re.compile(rb'"signature"\s*:\s*"' + re.escape(SIGNATURE_PREFIX.encode()))
)
