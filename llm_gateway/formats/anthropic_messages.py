"""Anthropic Messages API (``POST /v1/messages``) <-> unified representation.

Theory of operation: four pure functions convert between Anthropic JSON and
``unified`` dataclasses, plus two for errors. Parsing reads through
``FieldReader`` so every malformed field becomes an ``InvalidRequest`` naming
it (``UpstreamError`` for upstream responses). Rendering always emits one
canonical shape: content is a plain string when it is a single text block
without ``cache_control``, a block list otherwise; false/absent flags are
omitted. Parse(render(x)) == x for every request and response this module can
produce, which the property tests check.

Cross-format decisions (documented in docs/conversion.md):

* Leading system/developer messages join the top-level ``system`` blocks;
  later ones become user text wrapped in ``<system-reminder>`` tags, at
  their position (hoisting them would change the cached prompt prefix).
* Consecutive messages of one role are merged (the API merges them anyway),
  so tool results and the text that follows them form one user turn.
* ``max_tokens`` is required: the client's value, else ``policy.default_max_tokens``.
* Reasoning and the sampling fields it excludes: ``anthropic_reasoning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats import anthropic_reasoning, policy
from llm_gateway.formats.cache_control import cache_control_json, read_cache_control
from llm_gateway.formats.error_relay import decode_json, kind_for_status, relay_message
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.ids import response_id
from llm_gateway.formats.unified import (
    EMPTY_OBJECT,
    Base64Source,
    ChatRequest,
    ChatResponse,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    RedactedThinkingPart,
    ResponseFormat,
    ResponseFormatType,
    Role,
    StopReason,
    TextPart,
    ThinkingMode,
    ThinkingPart,
    Tool,
    ToolChoice,
    ToolChoiceMode,
    ToolResultContent,
    ToolResultPart,
    ToolUsePart,
    URLSource,
    Usage,
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
ID_PREFIX = "msg_"
#: what every request of this format must look like (checked before any upstream call)
#: (a ``system`` message inside ``messages`` is what Claude Code sends mid-conversation)
REQUEST_SHAPE = RequestShape(
    messages="messages",
    roles=frozenset({"user", "assistant", "system"}),
    max_tokens_required=True,
)

NAME = "anthropic-messages"

# fmt: off
_REQUEST_FIELDS = frozenset((
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
    "output_format", "service_tier",
))
# fmt: on
# Fields that change what the model can do; silently losing them would be noticed.
_REJECTED_FIELDS = {
    "container": "code-execution containers exist only on Anthropic",
    "mcp_servers": "the MCP connector exists only on Anthropic",
}
# Hints an upstream without the feature can ignore and still answer correctly.
_DROPPED_FIELDS = {
    # Context editing clears old tool results server-side to save tokens; without
    # it the upstream sees the whole conversation (Claude Code always sends it).
    "context_management": "context editing exists only on Anthropic",
}
# fmt: off
_ERROR_TYPES = frozenset((
    "invalid_request_error", "authentication_error", "billing_error", "permission_error",
    "not_found_error", "request_too_large", "rate_limit_error", "api_error", "timeout_error",
    "overloaded_error",
))
# fmt: on
_SYSTEM_REMINDER = "<system-reminder>\n{}\n</system-reminder>"


# -- requests: parse -------------------------------------------------------------


def parse_request(body: object) -> ChatRequest:
    """Anthropic request JSON -> ChatRequest. Raises InvalidRequest naming the bad field."""
    r = FieldReader(body)
    for key in r.present_keys():
        if key in _REJECTED_FIELDS:
            raise policy.unsupported(key, _REJECTED_FIELDS[key])
        if key in _DROPPED_FIELDS:
            policy.dropped(key, _DROPPED_FIELDS[key])
            continue
        if key not in _REQUEST_FIELDS:
            policy.dropped(key, "unknown Anthropic request field")
    if not r.req_list("messages"):
        raise InvalidRequest("messages must contain at least one message", param="messages")
    metadata = r.opt_obj("metadata")
    if metadata is not None:
        for key in metadata.present_keys():
            if key != "user_id":
                policy.dropped(metadata.at(key), "no counterpart")
    output_config = r.opt_obj("output_config")
    tool_choice, parallel = _parse_tool_choice(r.opt_obj("tool_choice"))
    return ChatRequest(
        model=r.req_str("model"),
        messages=tuple(_parse_message(m) for _, m in r.items_of("messages")),
        system=_parse_system(r),
        tools=tuple(_parse_tool(t) for _, t in r.items_of("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=r.opt_int("max_tokens", minimum=1),
        temperature=r.opt_number("temperature"),
        top_p=r.opt_number("top_p"),
        top_k=r.opt_int("top_k", minimum=0),
        stop=tuple(r.str_list("stop_sequences")),
        stream=bool(r.opt_bool("stream")),
        stream_include_usage=True,  # Anthropic streams always carry usage
        response_format=_parse_output_format(r, output_config),
        reasoning=_parse_reasoning(r.opt_obj("thinking"), output_config),
        user=metadata.opt_str("user_id") if metadata is not None else None,
        service_tier=r.opt_str("service_tier"),
    )


def _parse_system(r: FieldReader) -> tuple[TextPart, ...]:
    system = r.get("system")
    if system is None:
        return ()
    if isinstance(system, str):
        return (TextPart(system),)
    if not isinstance(system, list):
        raise InvalidRequest("system must be a string or an array of text blocks", param="system")
    parts = []
    for path, block in r.items_of("system"):
        if block.req_str("type") != "text":
            raise InvalidRequest(f"{path} must be a text block", param=f"{path}.type")
        parts.append(_parse_text(block))
    return tuple(parts)


def _parse_text(block: FieldReader) -> TextPart:
    if block.has("citations"):
        policy.dropped(block.at("citations"), "citations are not converted")
    return TextPart(block.req_str("text"), read_cache_control(block))


def _parse_message(m: FieldReader) -> Message:
    role = m.req_str("role")
    if role not in ("user", "assistant", "system"):
        raise InvalidRequest(f"{m.at('role')} must be 'user' or 'assistant'", param=m.at("role"))
    content = m.get("content")
    if isinstance(content, str):
        return Message(Role(role), (TextPart(content),))
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{m.at('content')} must be a string or an array of blocks", param=m.at("content")
        )
    return Message(Role(role), tuple(_parse_block(b) for _, b in m.items_of("content")))


def _parse_block(b: FieldReader) -> Part:
    kind = b.req_str("type")
    if kind == "text":
        return _parse_text(b)
    if kind == "image":
        return ImagePart(_parse_source(b.req_obj("source")), cache_control=read_cache_control(b))
    if kind == "document":
        return DocumentPart(
            _parse_source(b.req_obj("source")), b.opt_str("title"), read_cache_control(b)
        )
    if kind == "tool_use":
        return ToolUsePart(
            b.req_str("id"),
            b.req_str("name"),
            b.opt_json_object("input") or EMPTY_OBJECT,
            read_cache_control(b),
        )
    if kind == "tool_result":
        return _parse_tool_result(b)
    if kind == "thinking":
        return ThinkingPart(b.req_str("thinking"), b.opt_str("signature") or "")
    if kind == "redacted_thinking":
        return RedactedThinkingPart(b.req_str("data"))
    raise policy.unsupported(b.at("type"), f"content blocks of type {kind!r} have no counterpart")


def _parse_source(s: FieldReader) -> Base64Source | URLSource:
    kind = s.req_str("type")
    if kind == "base64":
        return Base64Source(s.req_str("media_type"), s.req_str("data"))
    if kind == "url":
        return URLSource(s.req_str("url"))
    raise policy.unsupported(s.at("type"), f"{kind!r} sources have no counterpart")


def _parse_tool_result(b: FieldReader) -> ToolResultPart:
    raw = b.get("content")
    content: tuple[ToolResultContent, ...]
    if raw is None:
        content = ()
    elif isinstance(raw, str):
        content = (TextPart(raw),) if raw else ()
    elif isinstance(raw, list):
        items: list[ToolResultContent] = []
        for path, block in b.items_of("content"):
            part = _parse_block(block)
            if not isinstance(part, (TextPart, ImagePart)):
                raise policy.unsupported(f"{path}.type", "tool results may hold text and images")
            items.append(part)
        content = tuple(items)
    else:
        raise b.fail(f"{b.at('content')} must be a string or an array", b.at("content"))
    return ToolResultPart(
        b.req_str("tool_use_id"), content, bool(b.opt_bool("is_error")), read_cache_control(b)
    )


def _parse_tool(t: FieldReader) -> Tool:
    kind = t.opt_str("type")
    if kind not in (None, "custom"):
        raise policy.unsupported(t.at("type"), f"server tool {kind!r} runs only on Anthropic")
    return Tool(
        name=t.req_str("name"),
        description=t.opt_str("description"),
        input_schema=t.req_json_object("input_schema"),
        strict=t.opt_bool("strict"),
        cache_control=read_cache_control(t),
    )


def _parse_tool_choice(c: FieldReader | None) -> tuple[ToolChoice | None, bool | None]:
    if c is None:
        return None, None
    kind = c.req_str("type")
    modes = {"auto": ToolChoiceMode.AUTO, "any": ToolChoiceMode.ANY, "none": ToolChoiceMode.NONE}
    disable = c.opt_bool("disable_parallel_tool_use")
    parallel = None if disable is None else not disable
    if kind == "tool":
        return ToolChoice(ToolChoiceMode.TOOL, c.req_str("name")), parallel
    if kind not in modes:
        raise InvalidRequest(
            f"{c.at('type')} {kind!r} is not a tool_choice type", param=c.at("type")
        )
    return ToolChoice(modes[kind]), parallel


def _parse_reasoning(t: FieldReader | None, output_config: FieldReader | None) -> Reasoning | None:
    effort = output_config.opt_str("effort") if output_config is not None else None
    if t is None:
        return Reasoning(effort=effort) if effort is not None else None
    kind = t.req_str("type")
    if kind == "enabled":
        budget = t.req_int("budget_tokens", minimum=1)
        return Reasoning(ThinkingMode.ENABLED, budget, effort)
    if kind in ("adaptive", "disabled"):
        return Reasoning(ThinkingMode(kind), None, effort)
    raise InvalidRequest(f"{t.at('type')} {kind!r} is not a thinking type", param=t.at("type"))


def _parse_output_format(
    r: FieldReader, output_config: FieldReader | None
) -> ResponseFormat | None:
    fmt = output_config.opt_obj("format") if output_config is not None else None
    if fmt is None:
        fmt = r.opt_obj("output_format")  # the deprecated beta spelling
    if fmt is None:
        return None
    if fmt.req_str("type") != "json_schema":
        raise InvalidRequest(f"{fmt.at('type')} must be 'json_schema'", param=fmt.at("type"))
    return ResponseFormat(ResponseFormatType.JSON_SCHEMA, schema=fmt.req_json_object("schema"))


# -- requests: render ------------------------------------------------------------


def render_request(req: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> Anthropic request JSON."""
    system, messages = _split_system(req)
    out: dict[str, Any] = {"model": req.model}
    if system:
        out["system"] = _render_content(system)
    out["messages"] = _render_messages(messages)
    max_tokens = req.max_tokens or policy.default_max_tokens(req.model)
    out["max_tokens"] = max_tokens
    if req.stop:
        out["stop_sequences"] = list(req.stop)
    if req.stream:
        out["stream"] = True
    thinking_on = anthropic_reasoning.render_reasoning(req, out, max_tokens)
    anthropic_reasoning.render_sampling(req, out, thinking_on)
    if req.user is not None:
        out["metadata"] = {"user_id": req.user}
    if req.tools:
        out["tools"] = [_render_tool(t) for t in req.tools]
    _render_tool_choice(req, out)
    _render_response_format(req, out)
    if req.service_tier is not None:
        tier = {"auto": "auto", "standard_only": "standard_only", "default": "standard_only"}
        if req.service_tier in tier:
            out["service_tier"] = tier[req.service_tier]
        else:
            policy.dropped("service_tier", f"Anthropic has no {req.service_tier!r} tier")
    for name in ("seed", "frequency_penalty", "presence_penalty", "logit_bias"):
        if getattr(req, name) is not None:
            policy.dropped(name, "Anthropic has no counterpart")
    return out


def _split_system(req: ChatRequest) -> tuple[list[TextPart], list[Message]]:
    """Top-level system text plus leading system/developer messages; the rest stays in order."""
    system = [p for p in req.system if p.text]
    messages = list(req.messages)
    while messages and messages[0].role in (Role.SYSTEM, Role.DEVELOPER):
        system.extend(p for p in messages.pop(0).parts if isinstance(p, TextPart) and p.text)
    return system, messages


def _render_messages(messages: list[Message]) -> list[dict[str, Any]]:
    turns: list[tuple[str, list[Part]]] = []
    for message in messages:
        role, parts = message.role.value, _sendable_parts(message.parts)
        if not parts and message.role is not Role.USER:
            policy.dropped(f"empty {role} message", "Anthropic requires non-empty content")
            continue
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            role = "user"
            parts = [
                TextPart(_SYSTEM_REMINDER.format(p.text), p.cache_control)
                for p in parts
                if isinstance(p, TextPart)
            ]
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(parts)
        else:
            turns.append((role, list(parts)))
    rendered = []
    for role, parts in turns:
        if not parts:
            raise InvalidRequest(
                f"a {role} message has no content; Anthropic requires non-empty content",
                param="messages",
            )
        rendered.append({"role": role, "content": _render_content(parts)})
    return rendered


def _sendable_parts(parts: tuple[Part, ...]) -> list[Part]:
    """Parts Anthropic accepts: no empty text, no thinking without a signature."""
    kept: list[Part] = []
    for part in parts:
        if isinstance(part, TextPart) and not part.text:
            continue
        if isinstance(part, ThinkingPart) and not part.signature:
            policy.dropped(
                "thinking", "reasoning without an Anthropic signature cannot be replayed"
            )
            continue
        kept.append(part)
    return kept


def _render_content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart) and parts[0].cache_control is None:
        return parts[0].text
    return [_render_block(p) for p in parts]


def _render_block(part: Part) -> dict[str, Any]:
    block: dict[str, Any]
    if isinstance(part, TextPart):
        block = {"type": "text", "text": part.text}
    elif isinstance(part, (ImagePart, DocumentPart)):
        kind = "image" if isinstance(part, ImagePart) else "document"
        block = {"type": kind, "source": _render_source(part.source)}
        if isinstance(part, DocumentPart) and part.title is not None:
            block["title"] = part.title
        if isinstance(part, ImagePart) and part.detail is not None:
            policy.dropped("image_url.detail", "Anthropic has no image detail setting")
    elif isinstance(part, ToolUsePart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input.value()}
    elif isinstance(part, ToolResultPart):
        block = {"type": "tool_result", "tool_use_id": part.tool_use_id}
        if part.content:
            block["content"] = _render_content(part.content)
        if part.is_error:
            block["is_error"] = True
    elif isinstance(part, ThinkingPart):
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    else:
        return {"type": "redacted_thinking", "data": part.data}
    if part.cache_control is not None:
        block["cache_control"] = cache_control_json(part.cache_control)
    return block


def _render_source(source: Base64Source | URLSource) -> dict[str, Any]:
    if isinstance(source, Base64Source):
        return {"type": "base64", "media_type": source.media_type, "data": source.data}
    return {"type": "url", "url": source.url}


def _render_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    schema = tool.input_schema.value() if tool.input_schema is not None else None
    out["input_schema"] = schema if schema is not None else {"type": "object", "properties": {}}
    if tool.strict is not None:
        out["strict"] = tool.strict
    if tool.cache_control is not None:
        out["cache_control"] = cache_control_json(tool.cache_control)
    return out


def _render_tool_choice(req: ChatRequest, out: dict[str, Any]) -> None:
    choice, parallel = req.tool_choice, req.parallel_tool_calls
    if not req.tools:
        if choice is not None or parallel is not None:
            policy.dropped("tool_choice", "the request has no tools")
        return
    if choice is None and parallel is None:
        return
    mode = choice.mode if choice is not None else ToolChoiceMode.AUTO
    rendered: dict[str, Any] = {"type": mode.value}
    if mode is ToolChoiceMode.TOOL and choice is not None:
        rendered["name"] = choice.name
    if parallel is not None and mode is not ToolChoiceMode.NONE:
        rendered["disable_parallel_tool_use"] = not parallel
    out["tool_choice"] = rendered


def _render_response_format(req: ChatRequest, out: dict[str, Any]) -> None:
    fmt = req.response_format
    if fmt is None or fmt.type is ResponseFormatType.TEXT:
        return
    if fmt.type is ResponseFormatType.JSON_OBJECT or fmt.schema is None:
        policy.dropped("response_format", "Anthropic has no schemaless JSON mode")
        return
    if fmt.name is not None or fmt.strict is not None or fmt.description is not None:
        policy.dropped("response_format.json_schema", "Anthropic takes the schema only")
    out.setdefault("output_config", {})["format"] = {
        "type": "json_schema",
        "schema": fmt.schema.value(),
    }


# -- responses ---------------------------------------------------------------------

_STOP_REASONS = {reason.value: reason for reason in StopReason}


def parse_response(body: object) -> ChatResponse:
    """Anthropic response JSON -> ChatResponse. Raises UpstreamError if malformed."""
    r = FieldReader(body, error=UpstreamError)
    parts: list[Part] = []
    for path, block in r.items_of("content"):
        kind = block.req_str("type")
        if kind in ("text", "tool_use", "thinking", "redacted_thinking"):
            parts.append(_parse_block(block))
        else:
            policy.dropped(f"{path} ({kind})", "server-side blocks have no counterpart")
    raw_stop = r.opt_str("stop_reason")
    stop = _STOP_REASONS.get(raw_stop) if raw_stop is not None else None
    if raw_stop is not None and stop is None:
        # e.g. model_context_window_exceeded: the output was cut short.
        stop = StopReason.MAX_TOKENS
    usage = r.opt_obj("usage")
    return ChatResponse(
        id=r.req_str("id"),
        model=r.opt_str("model") or "",
        parts=tuple(parts),
        stop_reason=stop,
        stop_sequence=r.opt_str("stop_sequence"),
        usage=_parse_usage(usage) if usage is not None else Usage(),
    )


def _parse_usage(u: FieldReader) -> Usage:
    return Usage(
        input_tokens=u.opt_int("input_tokens") or 0,
        output_tokens=u.opt_int("output_tokens") or 0,
        cache_read_tokens=u.opt_int("cache_read_input_tokens") or 0,
        cache_write_tokens=u.opt_int("cache_creation_input_tokens") or 0,
        cache_write_1h_tokens=_one_hour_writes(u.get("cache_creation")),
    )


def _one_hour_writes(creation: object) -> int:
    """``usage.cache_creation.ephemeral_1h_input_tokens``, 0 when absent."""
    if not isinstance(creation, dict):
        return 0
    value = creation.get("ephemeral_1h_input_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def render_response(resp: ChatResponse, *, model: str) -> dict[str, Any]:
    """ChatResponse -> Anthropic response JSON, reporting ``model`` (the client's name)."""
    content = []
    for part in resp.parts:
        if isinstance(part, (TextPart, ToolUsePart, ThinkingPart, RedactedThinkingPart)):
            content.append(_render_block(part))
        else:
            policy.dropped(type(part).__name__, "not an assistant output block")
    return {
        "id": response_id(ID_PREFIX, resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": resp.stop_reason.value if resp.stop_reason is not None else None,
        "stop_sequence": resp.stop_sequence,
        "usage": {
            "input_tokens": resp.usage.input_tokens,
            "output_tokens": resp.usage.output_tokens,
            "cache_creation_input_tokens": resp.usage.cache_write_tokens,
            "cache_read_input_tokens": resp.usage.cache_read_tokens,
        },
    }


# -- errors --------------------------------------------------------------------------


def render_error(status: int, kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    """Anthropic error body. ``param`` has no field in Anthropic's shape and goes into the message."""
    error_type = kind if kind in _ERROR_TYPES else kind_for_status(status)
    if error_type not in _ERROR_TYPES:
        error_type = "api_error"
    if param is not None and param not in message:
        message = f"{param}: {message}"
    return {"type": "error", "error": {"type": error_type, "message": message}}


def parse_error(status: int, body: bytes) -> tuple[str, str]:
    """An upstream Anthropic error body -> (neutral kind, client-safe message)."""
    data = decode_json(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        raw_type, raw_message = error.get("type"), error.get("message")
        kind = raw_type if isinstance(raw_type, str) and raw_type in _ERROR_TYPES else None
        message = raw_message if isinstance(raw_message, str) else None
        return kind or kind_for_status(status), relay_message(message, status)
    return kind_for_status(status), relay_message(None, status)
