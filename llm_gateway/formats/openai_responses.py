"""OpenAI Responses (``POST /v1/responses``) <-> unified representation.

Theory of operation: pure functions between Responses JSON and ``unified``
dataclasses; the ``response`` object lives in ``responses_output``, what the
format carries through other formats (tool kinds and namespaces, reasoning
signatures) in ``responses_carry``.

Requests:

* ``instructions`` and the ``system``/``developer`` message items before the
  first other item become ``system`` blocks, in order (Codex sends two);
  later ones stay in place as SYSTEM/DEVELOPER messages.
* ``input`` items fold into turns as the chat codec does: an assistant
  message, its ``reasoning`` and its ``function_call`` / ``custom_tool_call``
  items make one ASSISTANT message; ``function_call_output`` /
  ``custom_tool_call_output`` items become ``ToolResultPart`` s of one USER
  message, which the next user message joins.
* Tools: ``function`` as it is; ``namespace`` flattened; ``custom`` as a
  function of one string (``responses_carry``); hosted tools (``web_search``
  and the like) are dropped with a debug log, and a ``tool_choice`` that
  requires one is a 400.
* ``previous_response_id`` must have been resolved by the pipeline (the
  stored turns put in front of ``input``) before a conversion.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats import openai_content, openai_family, policy
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.responses_carry import (
    CUSTOM_INPUT,
    SEPARATOR,
    ToolName,
    flat_name,
    read_encrypted,
    read_name,
)
from llm_gateway.formats.responses_output import (
    new_response_id,
    output_items,
    parse_call,
    parse_response_body,
    response_object,
    status_of,
    summary_separator,
)
from llm_gateway.formats.unified import (
    Base64Source,
    ChatRequest,
    ChatResponse,
    DocumentPart,
    ImagePart,
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
    ToolResultContent,
    ToolResultPart,
    ToolUsePart,
    URLSource,
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
ID_PREFIX = "resp_"
NAME = "openai-responses"
#: what every request of this format must look like (``input`` is checked by the parser)
REQUEST_SHAPE = RequestShape(
    messages=None,
    roles=frozenset({"user", "assistant", "system", "developer"}),
    max_tokens=("max_output_tokens",),
)

render_error = openai_family.render_error
parse_error = openai_family.parse_error

# fmt: off
_REQUEST_FIELDS = frozenset((
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "max_output_tokens", "temperature", "top_p", "reasoning", "text", "stream", "user",
    "service_tier",
))
# fmt: on
_DROPPED_FIELDS = {
    "store": "responses are kept by the gateway itself",
    "include": "encrypted reasoning is always carried",
    "metadata": "stored-response metadata has no counterpart",
    "prompt_cache_key": "caching is keyed by the upstream itself",
    "prompt_cache_retention": "caching is managed by the upstream itself",
    "truncation": "the upstream's context limit applies",
    "safety_identifier": "no counterpart",
    "stream_options": "no counterpart",
    "max_tool_calls": "no counterpart",
    "top_logprobs": "no counterpart",
    "client_metadata": "no counterpart",
}
_REJECTED_FIELDS = {
    "background": "background responses run only on OpenAI",
    "conversation": "conversation objects exist only on OpenAI",
    "prompt": "reusable prompts exist only on OpenAI",
}
#: call items of OpenAI-hosted tools in history: only OpenAI can use them
_HOSTED_ITEMS = frozenset(
    (
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "local_shell_call",
        "local_shell_call_output",
        "compaction",
    )
)


# -- requests: parse ---------------------------------------------------------------


def parse_request(body: object) -> ChatRequest:
    """Responses request JSON -> ChatRequest. Raises InvalidRequest naming the bad field."""
    r = FieldReader(body)
    previous = r.opt_str("previous_response_id")
    if previous is not None:
        # the pipeline resolves the ids the gateway keeps before any conversion
        raise InvalidRequest(
            f"Previous response with id '{previous}' not found.", param="previous_response_id"
        )
    for key in r.present_keys():
        if key in _REJECTED_FIELDS:
            raise policy.unsupported(key, _REJECTED_FIELDS[key])
        if key in _DROPPED_FIELDS:
            policy.dropped(key, _DROPPED_FIELDS[key])
        elif key not in _REQUEST_FIELDS:
            policy.dropped(key, "unknown Responses field")
    system, messages = _parse_input(r)
    instructions = r.opt_str("instructions")
    if instructions:
        system = (TextPart(instructions), *system)
    tools, hosted = _parse_tools(r)
    reasoning = _parse_reasoning(r.opt_obj("reasoning"))
    return ChatRequest(
        model=r.req_str("model"),
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=_parse_tool_choice(r, hosted),
        parallel_tool_calls=r.opt_bool("parallel_tool_calls"),
        max_tokens=r.opt_int("max_output_tokens", minimum=1),
        temperature=r.opt_number("temperature"),
        top_p=r.opt_number("top_p"),
        stream=r.opt_bool("stream") or False,
        stream_include_usage=True,
        response_format=_parse_text(r.opt_obj("text")),
        reasoning=reasoning,
        user=r.opt_str("user"),
        service_tier=r.opt_str("service_tier"),
    )


class _Turns:
    """Folds input items into alternating messages (consecutive same-role parts merge)."""

    def __init__(self) -> None:
        self.system: list[TextPart] = []
        self.messages: list[Message] = []

    def add(self, role: Role, parts: tuple[Part, ...]) -> None:
        if role in (Role.SYSTEM, Role.DEVELOPER):
            texts = tuple(p for p in parts if isinstance(p, TextPart))
            if not self.messages:
                self.system.extend(texts)
            else:
                self.messages.append(Message(role, texts))
            return
        if self.messages and self.messages[-1].role is role:
            last = self.messages[-1]
            self.messages[-1] = Message(role, (*last.parts, *parts))
        else:
            self.messages.append(Message(role, parts))


def _parse_input(r: FieldReader) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    value = r.get("input")
    if value is None:
        raise r.fail("'input' is required", param="input")
    if isinstance(value, str):
        return (), (Message(Role.USER, (TextPart(value),)),)
    if not isinstance(value, list):
        raise r.fail("'input' must be a string or an array of items", param="input")
    turns = _Turns()
    for path, item in r.items_of("input"):
        kind = item.opt_str("type") or ("message" if item.has("role") else None)
        if kind == "message":
            role = _role(item)
            turns.add(role, _message_parts(item, role))
        elif kind in ("function_call", "custom_tool_call"):
            _check_name(item, "name")
            if item.has("namespace"):
                _check_name(item, "namespace")
            turns.add(Role.ASSISTANT, (parse_call(item),))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            turns.add(Role.USER, (_tool_result(item),))
        elif kind == "reasoning":
            part = _reasoning(item)
            if part is not None:
                turns.add(Role.ASSISTANT, (part,))
        elif kind in _HOSTED_ITEMS:
            policy.dropped(f"{path} ({kind})", "hosted-tool items are usable only by OpenAI")
        elif kind == "item_reference":
            raise policy.unsupported(path, "item references need OpenAI's stored items")
        else:
            raise item.fail(f"{path}.type {kind!r} is not a known input item", param=f"{path}.type")
    if not turns.messages:
        raise r.fail("'input' must hold at least one message or tool output", param="input")
    return tuple(turns.system), tuple(turns.messages)


def _role(item: FieldReader) -> Role:
    role = item.req_str("role")
    try:
        return Role(role)
    except ValueError:
        raise item.fail(
            f"{item.at('role')} must be user, assistant, system or developer, not {role!r}",
            param=item.at("role"),
        ) from None


def _message_parts(item: FieldReader, role: Role) -> tuple[Part, ...]:
    content = item.get("content")
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise item.fail(
            f"{item.at('content')} must be a string or an array of parts", param=item.at("content")
        )
    parts: list[Part] = []
    for path, p in item.items_of("content"):
        kind = p.req_str("type")
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(p.req_str("text")))
        elif kind == "refusal":
            parts.append(TextPart(p.req_str("refusal")))
        elif kind == "input_image" and role is Role.USER:
            parts.append(_image(path, p))
        elif kind == "input_file" and role is Role.USER:
            parts.append(_file(path, p))
        else:
            raise policy.unsupported(f"{path}.type", f"{kind!r} parts are not converted here")
    return tuple(parts)


def _image(path: str, p: FieldReader) -> ImagePart:
    if p.has("file_id"):
        raise policy.unsupported(p.at("file_id"), "uploaded file ids exist only on OpenAI")
    url = p.req_str("image_url")
    source: Base64Source | URLSource | None = openai_content.parse_data_url(url)
    if source is None:
        if not url.startswith(("http://", "https://")):
            raise p.fail(
                f"{p.at('image_url')} must be an http(s) URL or a base64 data: URL",
                param=p.at("image_url"),
            )
        source = URLSource(url)
    detail = p.opt_str("detail")
    return ImagePart(source, None if detail == "auto" else detail)


def _file(path: str, p: FieldReader) -> DocumentPart:
    if p.has("file_id"):
        raise policy.unsupported(p.at("file_id"), "uploaded file ids exist only on OpenAI")
    if p.has("file_url"):
        return DocumentPart(URLSource(p.req_str("file_url")), p.opt_str("filename"))
    data = p.req_str("file_data")
    source = openai_content.parse_data_url(data) or Base64Source("application/pdf", data)
    return DocumentPart(source, p.opt_str("filename"))


def _tool_result(item: FieldReader) -> ToolResultPart:
    output = item.get("output")
    content: tuple[ToolResultContent, ...]
    if isinstance(output, str):
        content = (TextPart(output),) if output else ()
    elif isinstance(output, list):
        parts: list[ToolResultContent] = []
        for path, p in item.items_of("output"):
            kind = p.req_str("type")
            if kind in ("input_text", "output_text"):
                parts.append(TextPart(p.req_str("text")))
            elif kind == "input_image":
                parts.append(_image(path, p))
            else:
                raise policy.unsupported(f"{path}.type", f"{kind!r} tool output is not converted")
        content = tuple(parts)
    else:
        raise item.fail(
            f"{item.at('output')} must be a string or an array of parts", param=item.at("output")
        )
    return ToolResultPart(item.req_str("call_id"), content)


def _reasoning(item: FieldReader) -> Part | None:
    texts = [s.req_str("text") for _, s in item.items_of("summary")]
    text = summary_separator.join(t for t in texts if t)
    carried = read_encrypted(item.opt_str("encrypted_content") or "")
    if carried is not None and carried[0] == "redacted":
        return RedactedThinkingPart(carried[1])
    if carried is not None:
        return ThinkingPart(text, carried[1])
    if not text:
        policy.dropped("reasoning", "OpenAI's encrypted reasoning is usable only by OpenAI")
        return None
    return ThinkingPart(text)


def _check_name(r: FieldReader, key: str) -> str:
    name = r.req_str(key)
    if SEPARATOR in name:
        raise r.fail(
            f"{r.at(key)} {name!r} contains '{SEPARATOR}', which the gateway uses to carry "
            "namespaces and custom tools through other formats",
            param=r.at(key),
        )
    return name


def _parse_tools(r: FieldReader) -> tuple[tuple[Tool, ...], frozenset[str]]:
    """The function tools (namespaces flattened, custom tools as functions) and the
    types of the hosted tools that were dropped."""
    tools: list[Tool] = []
    hosted: set[str] = set()
    for path, t in r.items_of("tools"):
        kind = t.req_str("type")
        if kind == "namespace":
            namespace = _check_name(t, "name")
            for _, inner in t.items_of("tools"):
                tools.append(_function_tool(inner, namespace))
        elif kind in ("function", "custom"):
            tools.append(_function_tool(t, ""))
        else:
            hosted.add(kind)
            policy.dropped(f"{path} ({kind})", "hosted tools run only on OpenAI")
    return tuple(tools), frozenset(hosted)


def _function_tool(t: FieldReader, namespace: str) -> Tool:
    kind = t.req_str("type")
    name = _check_name(t, "name")
    if kind == "function":
        return Tool(
            name=flat_name(ToolName(name, namespace)),
            description=t.opt_str("description"),
            input_schema=t.opt_json_object("parameters"),
            strict=t.opt_bool("strict"),
        )
    if kind != "custom":
        raise t.fail(f"{t.at('type')} must be 'function' or 'custom' here", param=t.at("type"))
    return Tool(
        name=flat_name(ToolName(name, namespace, custom=True)),
        description=t.opt_str("description"),
        input_schema=JSONValue.of(_custom_schema(t.opt_obj("format"))),
    )


def _custom_schema(fmt: FieldReader | None) -> dict[str, Any]:
    """A custom tool's free-form input as a function's one string argument; a
    grammar is described to the model in the argument's description."""
    field: dict[str, Any] = {"type": "string"}
    if fmt is not None and fmt.opt_str("type") == "grammar":
        syntax = fmt.opt_str("syntax") or "lark"
        definition = fmt.opt_str("definition") or ""
        field["description"] = f"Text in this {syntax} grammar:\n{definition}"
    else:
        field["description"] = "Free-form text input."
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT: field},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }


def _parse_tool_choice(r: FieldReader, hosted: frozenset[str]) -> ToolChoice | None:
    value = r.get("tool_choice")
    if value is None:
        return None
    if isinstance(value, str):
        modes = {"auto": ToolChoiceMode.AUTO, "none": ToolChoiceMode.NONE}
        modes["required"] = ToolChoiceMode.ANY
        if value not in modes:
            raise r.fail("'tool_choice' must be auto, none or required", param="tool_choice")
        return ToolChoice(modes[value])
    c = r.req_obj("tool_choice")
    kind = c.req_str("type")
    if kind in ("function", "custom"):
        tool = ToolName(c.req_str("name"), c.opt_str("namespace") or "", kind == "custom")
        return ToolChoice(ToolChoiceMode.TOOL, flat_name(tool))
    if kind == "allowed_tools":
        policy.dropped("tool_choice.tools", "the allowed-tools restriction is not converted")
        mode = c.opt_str("mode") or "auto"
        return ToolChoice(ToolChoiceMode.ANY if mode == "required" else ToolChoiceMode.AUTO)
    raise InvalidRequest(
        f"tool_choice requires the hosted tool {kind!r}, which runs only on OpenAI; "
        "this model's upstream cannot run it",
        param="tool_choice",
    )


def _parse_reasoning(r: FieldReader | None) -> Reasoning | None:
    if r is None:
        return None
    if r.has("summary") or r.has("generate_summary"):
        policy.dropped("reasoning.summary", "summaries come as the upstream gives them")
    effort = r.opt_str("effort")
    if effort is None:
        return None
    if effort == "none":
        return Reasoning(thinking=ThinkingMode.DISABLED, effort="none")
    return Reasoning(thinking=ThinkingMode.ENABLED, effort=effort)


def _parse_text(t: FieldReader | None) -> ResponseFormat | None:
    if t is None:
        return None
    if t.has("verbosity"):
        policy.dropped("text.verbosity", "no counterpart outside OpenAI")
    fmt = t.opt_obj("format")
    if fmt is None:
        return None
    kind = fmt.req_str("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(ResponseFormatType.JSON_OBJECT)
    if kind == "json_schema":
        return ResponseFormat(
            ResponseFormatType.JSON_SCHEMA,
            name=fmt.opt_str("name"),
            description=fmt.opt_str("description"),
            schema=fmt.opt_json_object("schema"),
            strict=fmt.opt_bool("strict"),
        )
    raise fmt.fail(
        f"{fmt.at('type')} must be text, json_object or json_schema", param=fmt.at("type")
    )


# -- requests: render --------------------------------------------------------------


def render_request(req: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> Responses request JSON (for a Responses upstream).

    Nothing is stored upstream (``store: false``); thinking goes back as
    reasoning items only when it carries OpenAI's own encrypted content, which
    an upstream would refuse otherwise, so it is dropped."""
    items: list[dict[str, Any]] = []
    custom_calls: set[str] = set()  # ids of calls of custom tools: their outputs match
    for message in req.messages:
        items.extend(_render_message(message, custom_calls))
    out: dict[str, Any] = {"model": req.model, "input": items, "store": False}
    if req.system:
        out["instructions"] = "\n\n".join(p.text for p in req.system)
    if req.max_tokens is not None:
        out["max_output_tokens"] = req.max_tokens
    for key in ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier"):
        value = getattr(req, key)
        if value is not None:
            out[key] = value
    if req.stop:
        policy.dropped("stop", "the Responses API has no stop sequences")
    if req.tools:
        out["tools"] = _render_tools(req.tools)
    if req.tool_choice is not None:
        out["tool_choice"] = _render_tool_choice(req.tool_choice)
    if req.response_format is not None:
        out["text"] = {"format": _render_format(req.response_format)}
    effort = _render_effort(req.reasoning)
    if effort is not None:
        out["reasoning"] = {"effort": effort, "summary": "auto"}
    if req.stream:
        out["stream"] = True
    return out


def _render_message(message: Message, custom_calls: set[str]) -> list[dict[str, Any]]:
    role = message.role
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    text_kind = "output_text" if role is Role.ASSISTANT else "input_text"

    def flush() -> None:
        if content:
            items.append({"type": "message", "role": role.value, "content": list(content)})
            content.clear()

    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": text_kind, "text": part.text})
        elif isinstance(part, ImagePart):
            content.append(_render_image(part))
        elif isinstance(part, DocumentPart):
            content.append(_render_document(part))
        elif isinstance(part, ToolUsePart):
            flush()
            items.append(_render_call(part, custom_calls))
        elif isinstance(part, ToolResultPart):
            flush()
            items.append(_render_result(part, part.tool_use_id in custom_calls))
        else:
            policy.dropped("thinking", "a Responses upstream takes only its own reasoning back")
    flush()
    return items


def _render_image(part: ImagePart) -> dict[str, Any]:
    source = part.source
    url = source.url if isinstance(source, URLSource) else openai_content.data_url(source)
    return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}


def _render_document(part: DocumentPart) -> dict[str, Any]:
    source = part.source
    out: dict[str, Any] = {"type": "input_file"}
    if isinstance(source, URLSource):
        out["file_url"] = source.url
    else:
        out["file_data"] = openai_content.data_url(source)
    out["filename"] = part.title or "document.pdf"
    return out


def _render_call(part: ToolUsePart, custom_calls: set[str]) -> dict[str, Any]:
    """A call in its Responses shape again: namespace and custom tools restored."""
    tool = read_name(part.name)
    out: dict[str, Any]
    if tool.custom:
        custom_calls.add(part.id)
        value = part.input.value()
        text = value.get(CUSTOM_INPUT) if isinstance(value, dict) else None
        out = {"type": "custom_tool_call", "call_id": part.id, "name": tool.name}
        out["input"] = text if isinstance(text, str) else part.input.text
    else:
        out = {"type": "function_call", "call_id": part.id, "name": tool.name}
        out["arguments"] = part.input.text
    if tool.namespace:
        out["namespace"] = tool.namespace
    return out


def _render_result(part: ToolResultPart, custom: bool) -> dict[str, Any]:
    texts = [p for p in part.content if isinstance(p, TextPart)]
    output: str | list[dict[str, Any]]
    if len(texts) == len(part.content):
        output = "".join(p.text for p in texts)
        if part.is_error:
            output = openai_content.ERROR_PREFIX + output
    else:
        output = [
            {"type": "input_text", "text": p.text} if isinstance(p, TextPart) else _render_image(p)
            for p in part.content
        ]
    kind = "custom_tool_call_output" if custom else "function_call_output"
    return {"type": kind, "call_id": part.tool_use_id, "output": output}


def _render_tools(tools: tuple[Tool, ...]) -> list[dict[str, Any]]:
    """Tools in their Responses shape: functions flattened from a namespace go back
    into it (in the order the namespace first appears), custom tools are custom."""
    out: list[dict[str, Any]] = []
    namespaces: dict[str, dict[str, Any]] = {}
    for tool in tools:
        identity = read_name(tool.name)
        rendered = _render_tool(tool, identity)
        if not identity.namespace:
            out.append(rendered)
            continue
        group = namespaces.get(identity.namespace)
        if group is None:
            group = {"type": "namespace", "name": identity.namespace, "description": ""}
            group["tools"] = []
            namespaces[identity.namespace] = group
            out.append(group)
        group["tools"].append(rendered)
    return out


def _render_tool(tool: Tool, identity: ToolName) -> dict[str, Any]:
    if identity.custom:
        custom: dict[str, Any] = {"type": "custom", "name": identity.name}
        if tool.description is not None:
            custom["description"] = tool.description
        custom["format"] = {"type": "text"}
        return custom
    out: dict[str, Any] = {"type": "function", "name": identity.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["parameters"] = (
        tool.input_schema.value() if tool.input_schema is not None else {"type": "object"}
    )
    # a Responses function without ``strict`` is strict, which refuses the
    # schemas other formats allow: unknown strictness is sent as not strict
    out["strict"] = bool(tool.strict)
    return out


def _render_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode is ToolChoiceMode.TOOL:
        return {"type": "function", "name": choice.name}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.mode.value]


def _render_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type is not ResponseFormatType.JSON_SCHEMA:
        return {"type": fmt.type.value}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name or "response"}
    if fmt.description is not None:
        out["description"] = fmt.description
    if fmt.schema is not None:
        out["schema"] = fmt.schema.value()
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    return out


def _render_effort(reasoning: Reasoning | None) -> str | None:
    if reasoning is None:
        return None
    if reasoning.effort is not None:
        return policy.openai_effort(reasoning.effort) or (
            "none" if reasoning.effort == "none" else None
        )
    if reasoning.thinking is ThinkingMode.ENABLED and reasoning.budget_tokens is not None:
        return policy.budget_to_effort(reasoning.budget_tokens)
    return None


# -- responses ------------------------------------------------------------------------


def parse_response(body: object) -> ChatResponse:
    """Responses ``response`` JSON -> ChatResponse. Raises UpstreamError if malformed."""
    return parse_response_body(body)


def render_response(resp: ChatResponse, *, model: str) -> dict[str, Any]:
    """ChatResponse -> a Responses ``response`` object reporting ``model``."""
    ident = new_response_id(resp.id)
    status, incomplete = status_of(resp.stop_reason)
    return response_object(
        response_id=ident,
        model=model,
        created=resp.created,
        status=status,
        output=output_items(resp, ident),
        usage=resp.usage,
        incomplete=incomplete,
    )
