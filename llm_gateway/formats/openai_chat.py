"""OpenAI Chat Completions (``POST /v1/chat/completions``) <-> unified representation.

Theory of operation: pure functions between OpenAI JSON and ``unified``
dataclasses; message content goes through ``openai_content``, the fields shared
with legacy completions through ``openai_family``. Parsing reads through
``FieldReader`` (``InvalidRequest`` naming the field for requests,
``UpstreamError`` for responses). Rendering emits one canonical shape:
content is a string when it is one text part, an array otherwise; ``stop``
is always an array; max tokens go out as ``max_completion_tokens``.

Conversation structure:

* ``tool`` messages become ``ToolResultPart`` s of one USER message; the user
  message right after them joins that turn (Anthropic's shape), and renders
  back as the same tool messages followed by one user message.
* system/developer messages keep their role and position.
* Assistant ``tool_calls[].function.arguments`` is a JSON string: it must
  parse to an object ("" means ``{}``).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats import openai_content, openai_family, policy
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.ids import response_id
from llm_gateway.formats.unified import (
    ChatRequest,
    ChatResponse,
    JSONValue,
    Message,
    Part,
    Reasoning,
    RedactedThinkingPart,
    ResponseFormat,
    ResponseFormatType,
    Role,
    TextPart,
    ThinkingMode,
    ThinkingPart,
    Tool,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    ToolUsePart,
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
ID_PREFIX = "chatcmpl-"
#: what every request of this format must look like (checked before any upstream call)
REQUEST_SHAPE = RequestShape(
    messages="messages",
    roles=frozenset({"system", "developer", "user", "assistant", "tool", "function"}),
    max_tokens=("max_tokens", "max_completion_tokens"),
)

NAME = "openai-chat"

render_error = openai_family.render_error
parse_error = openai_family.parse_error

# fmt: off
_REQUEST_FIELDS = openai_family.SAMPLING_FIELDS | frozenset((
    "model", "messages", "max_tokens", "max_completion_tokens", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "reasoning_effort", "safety_identifier",
    "logprobs", "top_logprobs", "modalities",
))
# fmt: on
_DROPPED_FIELDS = {
    "store": "stored completions are an OpenAI platform feature",
    "metadata": "stored-completion metadata has no counterpart",
    "prediction": "predicted outputs have no counterpart",
    "verbosity": "no counterpart",
    "prompt_cache_key": "caching is keyed by the upstream itself",
    "prompt_cache_retention": "caching is managed by the upstream itself",
}
_REJECTED_FIELDS = {
    "audio": "audio output has no counterpart",
    "functions": "the deprecated functions API is not converted; use tools",
    "function_call": "the deprecated functions API is not converted; use tool_choice",
    "web_search_options": "web search runs only on OpenAI",
}


# -- requests: parse ---------------------------------------------------------------


def parse_request(body: object) -> ChatRequest:
    """OpenAI chat request JSON -> ChatRequest. Raises InvalidRequest naming the bad field."""
    r = FieldReader(body)
    for key in r.present_keys():
        if key in _REJECTED_FIELDS:
            raise policy.unsupported(key, _REJECTED_FIELDS[key])
        if key in _DROPPED_FIELDS:
            policy.dropped(key, _DROPPED_FIELDS[key])
        elif key not in _REQUEST_FIELDS:
            policy.dropped(key, "unknown OpenAI request field")
    _check_unsupported_outputs(r)
    if not r.req_list("messages"):
        raise InvalidRequest("messages must contain at least one message", param="messages")
    max_tokens = r.opt_int("max_completion_tokens", minimum=1)
    legacy_max = r.opt_int("max_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = legacy_max
    elif legacy_max is not None and legacy_max != max_tokens:
        policy.dropped("max_tokens", "max_completion_tokens takes precedence")
    s = openai_family.parse_sampling(r, max_tokens)
    user = s.user if s.user is not None else r.opt_str("safety_identifier")
    effort = r.opt_str("reasoning_effort")
    reasoning = None
    if effort is not None:
        mode = ThinkingMode.DISABLED if effort == "none" else ThinkingMode.ENABLED
        reasoning = Reasoning(mode, None, effort)
    return ChatRequest(
        model=r.req_str("model"),
        messages=_parse_messages(r),
        tools=tuple(_parse_tool(t) for _, t in r.items_of("tools")),
        tool_choice=_parse_tool_choice(r),
        parallel_tool_calls=r.opt_bool("parallel_tool_calls"),
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        top_p=s.top_p,
        stop=s.stop,
        stream=s.stream,
        stream_include_usage=s.stream_include_usage,
        response_format=_parse_response_format(r.opt_obj("response_format")),
        reasoning=reasoning,
        user=user,
        seed=s.seed,
        frequency_penalty=s.frequency_penalty,
        presence_penalty=s.presence_penalty,
        logit_bias=s.logit_bias,
        service_tier=s.service_tier,
    )


def _check_unsupported_outputs(r: FieldReader) -> None:
    if r.opt_bool("logprobs"):
        raise policy.unsupported("logprobs", "log probabilities are not converted")
    if r.opt_int("top_logprobs") is not None:
        raise policy.unsupported("top_logprobs", "log probabilities are not converted")
    modalities = r.str_list("modalities")
    if any(m != "text" for m in modalities):
        raise policy.unsupported("modalities", "only text output is converted")


def _parse_messages(r: FieldReader) -> tuple[Message, ...]:
    messages: list[Message] = []
    tool_turn_open = False  # the last message is a USER turn built from tool messages
    for _, m in r.items_of("messages"):
        role = m.req_str("role")
        if m.has("name"):
            policy.dropped(m.at("name"), "participant names have no counterpart")
        if role == "tool":
            result = ToolResultPart(m.req_str("tool_call_id"), openai_content.parse_tool_content(m))
            if tool_turn_open:
                messages[-1] = Message(Role.USER, (*messages[-1].parts, result))
            else:
                messages.append(Message(Role.USER, (result,)))
            tool_turn_open = True
            continue
        if role == "user":
            parts = openai_content.parse_user_content(m)
            if tool_turn_open:
                messages[-1] = Message(Role.USER, messages[-1].parts + parts)
            else:
                messages.append(Message(Role.USER, parts))
        elif role in ("system", "developer"):
            messages.append(Message(Role(role), openai_content.parse_text_content(m)))
        elif role == "assistant":
            messages.append(Message(Role.ASSISTANT, _parse_assistant(m)))
        elif role == "function":
            raise policy.unsupported(m.at("role"), "the deprecated functions API is not converted")
        else:
            raise InvalidRequest(
                f"{m.at('role')} {role!r} is not a message role", param=m.at("role")
            )
        tool_turn_open = False
    return tuple(messages)


def _parse_assistant(m: FieldReader) -> tuple[Part, ...]:
    for key, why in (("audio", "audio replies"), ("function_call", "the functions API")):
        if m.has(key):
            raise policy.unsupported(m.at(key), f"{why} are not converted")
    if m.has("reasoning_content"):
        policy.dropped(m.at("reasoning_content"), "unsigned reasoning cannot be replayed")
    parts: list[Part] = list(openai_content.parse_assistant_content(m))
    refusal = m.opt_str("refusal")
    if refusal:
        parts.append(TextPart(refusal))
    for _, call in m.items_of("tool_calls"):
        kind = call.opt_str("type") or "function"
        if kind != "function":
            raise policy.unsupported(call.at("type"), f"{kind!r} tool calls are not converted")
        function = call.req_obj("function")
        parts.append(
            ToolUsePart(call.req_str("id"), function.req_str("name"), _arguments(function))
        )
    return tuple(parts)


def _arguments(function: FieldReader) -> JSONValue:
    """``function.arguments`` (a JSON string) as a JSON object; "" means {}."""
    text = function.req_str("arguments") if function.has("arguments") else ""
    if not text.strip():
        return JSONValue("{}")
    try:
        value = JSONValue.parse(text)
    except ValueError:
        raise function.fail(
            f"{function.at('arguments')} is not valid JSON", function.at("arguments")
        ) from None
    if not value.is_object():
        raise function.fail(
            f"{function.at('arguments')} must encode a JSON object", function.at("arguments")
        )
    return value


def _parse_tool(t: FieldReader) -> Tool:
    kind = t.req_str("type")
    if kind != "function":
        raise policy.unsupported(t.at("type"), f"{kind!r} tools are not converted")
    f = t.req_obj("function")
    return Tool(
        name=f.req_str("name"),
        description=f.opt_str("description"),
        input_schema=f.opt_json_object("parameters"),
        strict=f.opt_bool("strict"),
    )


def _parse_tool_choice(r: FieldReader) -> ToolChoice | None:
    choice = r.get("tool_choice")
    if choice is None:
        return None
    modes = {"auto": ToolChoiceMode.AUTO, "required": ToolChoiceMode.ANY}
    modes["none"] = ToolChoiceMode.NONE
    if isinstance(choice, str):
        if choice not in modes:
            raise InvalidRequest(f"tool_choice {choice!r} is not valid", param="tool_choice")
        return ToolChoice(modes[choice])
    c = r.req_obj("tool_choice")
    kind = c.req_str("type")
    if kind != "function":
        raise policy.unsupported(c.at("type"), f"{kind!r} tool choice is not converted")
    return ToolChoice(ToolChoiceMode.TOOL, c.req_obj("function").req_str("name"))


def _parse_response_format(f: FieldReader | None) -> ResponseFormat | None:
    if f is None:
        return None
    kind = f.req_str("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(ResponseFormatType(kind))
    if kind != "json_schema":
        raise InvalidRequest(f"{f.at('type')} {kind!r} is not valid", param=f.at("type"))
    spec = f.req_obj("json_schema")
    return ResponseFormat(
        ResponseFormatType.JSON_SCHEMA,
        name=spec.req_str("name"),
        description=spec.opt_str("description"),
        schema=spec.opt_json_object("schema"),
        strict=spec.opt_bool("strict"),
    )


# -- requests: render --------------------------------------------------------------


def render_request(req: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> OpenAI chat request JSON."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": openai_content.render_text(req.system)})
    for message in req.messages:
        messages.extend(_render_message(message))
    out: dict[str, Any] = {"model": req.model, "messages": messages}
    openai_family.render_sampling(req, out, "max_completion_tokens")
    if req.tools:
        out["tools"] = [_render_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        out["tool_choice"] = _render_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = req.parallel_tool_calls
    if req.response_format is not None:
        out["response_format"] = _render_response_format(req.response_format)
    effort = _render_reasoning(req.reasoning)
    if effort is not None:
        out["reasoning_effort"] = effort
    return out


def _render_message(message: Message) -> list[dict[str, Any]]:
    if message.role in (Role.SYSTEM, Role.DEVELOPER):
        texts = tuple(p for p in message.parts if isinstance(p, TextPart))
        return [{"role": message.role.value, "content": openai_content.render_text(texts)}]
    if message.role is Role.ASSISTANT:
        return [_render_assistant(message.parts)]
    return openai_content.render_user_turn(message.parts)


def _render_assistant(parts: tuple[Part, ...]) -> dict[str, Any]:
    texts = tuple(p for p in parts if isinstance(p, TextPart))
    calls = [p for p in parts if isinstance(p, ToolUsePart)]
    for part in parts:
        if isinstance(part, (ThinkingPart, RedactedThinkingPart)):
            policy.dropped("thinking", "OpenAI has no field for reasoning in history")
        elif not isinstance(part, (TextPart, ToolUsePart)):
            policy.dropped(type(part).__name__, "OpenAI assistant messages hold text and calls")
    out: dict[str, Any] = {"role": "assistant"}
    if texts:
        out["content"] = openai_content.render_text(texts)
    else:
        out["content"] = None if calls else ""
    if calls:
        out["tool_calls"] = [_render_call(c) for c in calls]
    return out


def _render_call(call: ToolUsePart) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.input.text}
    return {"id": call.id, "type": "function", "function": function}


def _render_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.input_schema is not None:
        function["parameters"] = tool.input_schema.value()
    if tool.strict is not None:
        function["strict"] = tool.strict
    if tool.cache_control is not None:
        policy.dropped("tools.cache_control", "OpenAI caches prompts automatically")
    return {"type": "function", "function": function}


def _render_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode is ToolChoiceMode.TOOL:
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.mode.value]


def _render_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type is not ResponseFormatType.JSON_SCHEMA:
        return {"type": fmt.type.value}
    spec: dict[str, Any] = {"name": fmt.name or "response"}
    if fmt.description is not None:
        spec["description"] = fmt.description
    if fmt.schema is not None:
        spec["schema"] = fmt.schema.value()
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _render_reasoning(reasoning: Reasoning | None) -> str | None:
    """reasoning_effort: the effort as given, else from the thinking budget (policy table)."""
    if reasoning is None:
        return None
    if reasoning.effort is not None:
        effort = policy.openai_effort(reasoning.effort)
        if effort is None:
            policy.dropped("reasoning effort", f"OpenAI has no {reasoning.effort!r} effort")
        return effort
    if reasoning.thinking is ThinkingMode.ENABLED and reasoning.budget_tokens is not None:
        return policy.budget_to_effort(reasoning.budget_tokens)
    mode = reasoning.thinking.value if reasoning.thinking is not None else "unset"
    policy.dropped("thinking", f"{mode} thinking without an effort: the model's default applies")
    return None


# -- responses ------------------------------------------------------------------------


def parse_response(body: object) -> ChatResponse:
    """OpenAI chat completion JSON -> ChatResponse. Raises UpstreamError if malformed."""
    r, choice = openai_family.first_choice(body)
    message = choice.req_obj("message")
    parts: list[Part] = []
    for key in ("reasoning_content", "reasoning"):  # compatible servers' reasoning text
        if isinstance(message.get(key), str) and message.get(key):
            parts.append(ThinkingPart(message.req_str(key)))
            break
    parts.extend(openai_content.parse_assistant_content(message))
    refusal = message.opt_str("refusal")
    if refusal:
        parts.append(TextPart(refusal))
    for _, call in message.items_of("tool_calls"):
        function = call.req_obj("function")
        parts.append(
            ToolUsePart(call.req_str("id"), function.req_str("name"), _arguments(function))
        )
    stop = openai_family.stop_reason(choice.opt_str("finish_reason"))
    return ChatResponse(
        id=r.req_str("id"),
        model=r.opt_str("model") or "",
        parts=tuple(parts),
        stop_reason=stop,
        usage=openai_family.parse_usage(r.opt_obj("usage")),
        created=r.opt_int("created") or 0,
    )


def render_response(resp: ChatResponse, *, model: str) -> dict[str, Any]:
    """ChatResponse -> OpenAI chat completion JSON, reporting ``model`` (the client's name).

    Text blocks are concatenated into ``content`` as a stream would deliver
    them; thinking text goes to ``reasoning_content`` (the field compatible
    servers use), signatures and redacted thinking are dropped.
    """
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    calls = [p for p in resp.parts if isinstance(p, ToolUsePart)]
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [_render_call(c) for c in calls]
    return {
        "id": response_id(ID_PREFIX, resp.id),
        "object": "chat.completion",
        "created": resp.created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_family.finish_reason(resp.stop_reason),
            }
        ],
        "usage": openai_family.render_usage(resp.usage),
    }
