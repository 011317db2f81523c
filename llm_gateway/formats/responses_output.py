"""OpenAI Responses output (the ``response`` object) <-> unified responses.

Theory of operation: a ``ChatResponse``'s parts become output items in
order: a thinking block one ``reasoning`` item (its text one summary part,
its signature carried in ``encrypted_content``, see ``responses_carry``), a
text block one ``message`` item with one ``output_text`` part, a tool call
a ``function_call`` or ``custom_tool_call`` item. The stream renderer
builds the same items, so a stream's final response equals the
non-streamed one. Item ids are derived from the response id and the item's
position, so the same answer always gets the same ids.

Status: ``incomplete`` with ``max_output_tokens`` for a MAX_TOKENS stop,
with ``content_filter`` for a refusal; ``completed`` otherwise. Reading
back, function calls mean TOOL_USE.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llm_gateway.errors import UpstreamError
from llm_gateway.formats import policy
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.ids import response_id
from llm_gateway.formats.responses_carry import (
    CUSTOM_INPUT,
    ToolName,
    encrypted_for_redacted,
    encrypted_for_signature,
    flat_name,
    read_encrypted,
    read_name,
)
from llm_gateway.formats.unified import (
    ChatResponse,
    JSONValue,
    Part,
    RedactedThinkingPart,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)

__all__ = [
    "call_item",
    "item_id",
    "message_item",
    "new_response_id",
    "output_items",
    "parse_call",
    "parse_response_body",
    "parse_output",
    "parse_usage",
    "reasoning_item",
    "render_usage",
    "response_object",
    "status_of",
    "stop_of",
    "summary_separator",
]

#: the style of Responses ids
RESPONSE_PREFIX = "resp_"
#: between the summary parts of one reasoning item, read as one thinking block
summary_separator = "\n\n"

_ITEM_PREFIX = {
    "message": "msg_",
    "reasoning": "rs_",
    "function_call": "fc_",
    "custom_tool_call": "ctc_",
}


def new_response_id(upstream_id: str | None) -> str:
    """The ``resp_`` id of a converted response: the upstream id's distinctive part
    (the same answer always gets the same id), or a random one."""
    return response_id(RESPONSE_PREFIX, upstream_id)


def item_id(kind: str, response: str, position: int) -> str:
    """The id of output item ``position`` of the response ``response``."""
    digest = hashlib.sha256(f"{response}/{position}".encode()).hexdigest()[:32]
    return _ITEM_PREFIX[kind] + digest


# -- usage ------------------------------------------------------------------------


def parse_usage(u: FieldReader | None) -> Usage:
    if u is None:
        return Usage()
    total_input = u.opt_int("input_tokens") or 0
    details = u.opt_obj("input_tokens_details")
    cached = min((details.opt_int("cached_tokens") if details else None) or 0, total_input)
    out_details = u.opt_obj("output_tokens_details")
    reasoning = out_details.opt_int("reasoning_tokens") if out_details else None
    return Usage(
        input_tokens=total_input - cached,
        output_tokens=u.opt_int("output_tokens") or 0,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning or 0,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    total_input = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": total_input,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": total_input + usage.output_tokens,
    }


# -- status ---------------------------------------------------------------------------

_INCOMPLETE = {StopReason.MAX_TOKENS: "max_output_tokens", StopReason.REFUSAL: "content_filter"}
_FROM_INCOMPLETE = {v: k for k, v in _INCOMPLETE.items()}


def status_of(stop: StopReason | None) -> tuple[str, dict[str, Any] | None]:
    """The response ``status`` and ``incomplete_details`` for a stop reason."""
    reason = _INCOMPLETE.get(stop) if stop is not None else None
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def stop_of(status: str | None, reason: str | None, called: bool) -> StopReason:
    """The stop reason a response's status (and incomplete reason) means."""
    if status == "incomplete" and reason in _FROM_INCOMPLETE:
        return _FROM_INCOMPLETE[reason]
    return StopReason.TOOL_USE if called else StopReason.END_TURN


# -- items ----------------------------------------------------------------------------


def reasoning_item(ident: str, text: str, encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": ident,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def call_item(ident: str, call_id: str, flat: str, arguments: str, status: str) -> dict[str, Any]:
    """A ``function_call`` or ``custom_tool_call`` item for a call of the unified
    function ``flat`` with JSON ``arguments``."""
    tool = read_name(flat)
    item: dict[str, Any]
    if tool.custom:
        item = {
            "id": ident,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "input": _custom_input(arguments),
        }
    else:
        item = {
            "id": ident,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "arguments": arguments,
        }
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def _custom_input(arguments: str) -> str:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments
    text = value.get(CUSTOM_INPUT) if isinstance(value, dict) else None
    return text if isinstance(text, str) else arguments


def message_item(ident: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def output_items(resp: ChatResponse, response: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for part in resp.parts:
        position = len(items)
        if isinstance(part, TextPart):
            items.append(
                message_item(item_id("message", response, position), part.text, "completed")
            )
        elif isinstance(part, ThinkingPart):
            encrypted = encrypted_for_signature(part.signature) if part.signature else None
            ident = item_id("reasoning", response, position)
            items.append(reasoning_item(ident, part.text, encrypted))
        elif isinstance(part, RedactedThinkingPart):
            ident = item_id("reasoning", response, position)
            items.append(reasoning_item(ident, "", encrypted_for_redacted(part.data)))
        elif isinstance(part, ToolUsePart):
            kind = "custom_tool_call" if read_name(part.name).custom else "function_call"
            ident = item_id(kind, response, position)
            items.append(call_item(ident, part.id, part.name, part.input.text, "completed"))
        else:
            policy.dropped(type(part).__name__, "a response holds no such output")
    return items


def response_object(
    *,
    response_id: str,
    model: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    incomplete: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole ``response`` object (as returned, and in stream lifecycle events)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": render_usage(usage) if usage is not None else None,
        "metadata": {},
    }


# -- parse ----------------------------------------------------------------------------


def parse_output(r: FieldReader) -> tuple[tuple[Part, ...], bool]:
    """A response's ``output`` items -> parts, and whether any was a call."""
    parts: list[Part] = []
    called = False
    for path, item in r.items_of("output"):
        kind = item.req_str("type")
        if kind == "message":
            for _, content in item.items_of("content"):
                ctype = content.req_str("type")
                if ctype == "output_text":
                    parts.append(TextPart(content.req_str("text")))
                elif ctype == "refusal":
                    parts.append(TextPart(content.req_str("refusal")))
        elif kind == "reasoning":
            part = _reasoning_part(item)
            if part is not None:
                parts.append(part)
        elif kind in ("function_call", "custom_tool_call"):
            called = True
            parts.append(parse_call(item))
        else:
            policy.dropped(f"{path} ({kind})", "output items of hosted tools are not converted")
    return tuple(parts), called


def parse_call(item: FieldReader) -> ToolUsePart:
    """A ``function_call`` or ``custom_tool_call`` item (request or response) as a tool call."""
    custom = item.req_str("type") == "custom_tool_call"
    tool = ToolName(item.req_str("name"), item.opt_str("namespace") or "", custom)
    if custom:
        arguments = JSONValue.of({CUSTOM_INPUT: item.req_str("input")})
    else:
        text = item.req_str("arguments")
        try:
            arguments = JSONValue.parse(text) if text.strip() else JSONValue("{}")
        except ValueError:
            raise item.fail(
                f"{item.at('arguments')} must be a JSON object in a string",
                param=item.at("arguments"),
            ) from None
        if not arguments.is_object():
            raise item.fail(
                f"{item.at('arguments')} must be a JSON object", param=item.at("arguments")
            )
    return ToolUsePart(item.req_str("call_id"), flat_name(tool), arguments)


def _reasoning_part(item: FieldReader) -> Part | None:
    texts = [s.req_str("text") for _, s in item.items_of("summary")]
    text = summary_separator.join(t for t in texts if t)
    carried = read_encrypted(item.opt_str("encrypted_content") or "")
    if carried is not None and carried[0] == "redacted":
        return RedactedThinkingPart(carried[1])
    signature = carried[1] if carried is not None else ""
    if not text and not signature:
        policy.dropped("reasoning", "encrypted reasoning is usable only by OpenAI")
        return None
    return ThinkingPart(text, signature)


def parse_response_body(body: object) -> ChatResponse:
    r = FieldReader(body, error=UpstreamError)
    parts, called = parse_output(r)
    incomplete = r.opt_obj("incomplete_details")
    reason = incomplete.opt_str("reason") if incomplete is not None else None
    return ChatResponse(
        id=r.req_str("id"),
        model=r.opt_str("model") or "",
        parts=parts,
        stop_reason=stop_of(r.opt_str("status"), reason, called),
        usage=parse_usage(r.opt_obj("usage")),
        created=r.opt_int("created_at") or 0,
    )
