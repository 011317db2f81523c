"""Gemini ``models/{model}:generateContent`` <-> unified representation.

Theory of operation: pure functions between Gemini JSON and ``unified``
dataclasses, like the other codecs; the model is in the URL path, not the
body (the provider builds it), so ``render_request`` writes no ``model`` and
``parse_request`` leaves it empty for the caller to fill in. Parsing reads
through ``FieldReader``. Rendering emits one canonical shape; parse(render(x))
== x for what this module can produce.

Cross-format decisions (docs/conversion.md):

* roles: user -> ``user``, assistant -> ``model``; consecutive turns of one
  role are merged, so the ``functionResponse`` parts of parallel calls form
  one ``user`` turn right after the ``model`` turn with the calls. Leading
  system/developer messages and ``system`` go to ``systemInstruction``;
  later ones become ``<system-reminder>`` user text at their position.
* tool calls and thought signatures travel in tool-call ids and thinking
  signatures (``gemini_carry``); a ``functionResponse`` gets its function
  name from the call in the history, else from the id.
* tool schemas are rewritten to Gemini's subset (``gemini_schema``).
* a signature on a text part (Gemini 3 may put one on the last part of a
  turn without function calls) is not carried: Gemini validates signatures
  on function calls only.
* for a Gemini client, another provider's thinking signature travels in the
  thought part's ``thoughtSignature`` (``gemini_carry``), and its tool-call
  ids in ``functionCall.id``.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats import gemini_reasoning, policy
from llm_gateway.formats.error_relay import decode_json, kind_for_status, relay_message
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.gemini_carry import (
    call_nonce,
    carry_foreign_signature,
    make_call_id,
    read_call_id,
    read_foreign_signature,
    signature_for_client,
    signature_from_client,
)
from llm_gateway.formats.gemini_schema import to_gemini_schema
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
    ResponseFormat,
    ResponseFormatType,
    Role,
    StopReason,
    TextPart,
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
    "finish_reason",
    "parse_error",
    "parse_request",
    "parse_token_count",
    "parse_response",
    "parse_usage",
    "render_error",
    "render_request",
    "render_response",
    "render_token_count",
    "render_usage",
    "stop_reason",
]

NAME = "gemini-generate-content"

#: Gemini response ids have no style of their own: the upstream's is kept
ID_PREFIX = ""
#: what every request of this format must look like (the model is named in the
#: URL path, not the body; the output limit sits in ``generationConfig``)
REQUEST_SHAPE = RequestShape(
    messages="contents",
    roles=frozenset({"user", "model"}),
    max_tokens=(),
    count_wrapper="generateContentRequest",
)

_REQUEST_FIELDS = frozenset(
    ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")
)
_DROPPED_FIELDS = {
    "safetySettings": "safety settings exist only on Gemini",
    "cachedContent": "cached contents exist only on Gemini",
    "labels": "no counterpart",
}
_SYSTEM_REMINDER = "<system-reminder>\n{}\n</system-reminder>"
# The documented placeholder for a function call whose signature was never
# seen (history from another model): Gemini 3 accepts it instead of the real one.
SKIP_SIGNATURE = "skip_thought_signature_validator"
_PDF = "application/pdf"


# -- requests: parse ---------------------------------------------------------------


def parse_request(body: object) -> ChatRequest:
    """Gemini request JSON -> ChatRequest (``model`` as in the body, "" when absent)."""
    r = FieldReader(body)
    for key in r.present_keys():
        if key in _DROPPED_FIELDS:
            policy.dropped(key, _DROPPED_FIELDS[key])
        elif key not in _REQUEST_FIELDS:
            policy.dropped(key, "unknown Gemini request field")
    if not r.req_list("contents"):
        raise InvalidRequest("contents must contain at least one turn", param="contents")
    config = r.opt_obj("generationConfig") or FieldReader({}, "generationConfig")
    messages = _parse_contents(r)
    model = r.opt_str("model") or ""
    return ChatRequest(
        model=model.removeprefix("models/"),
        messages=messages,
        system=_parse_system(r.opt_obj("systemInstruction")),
        tools=tuple(_parse_tools(r)),
        tool_choice=_parse_tool_choice(r.opt_obj("toolConfig")),
        max_tokens=config.opt_int("maxOutputTokens", minimum=1),
        temperature=config.opt_number("temperature"),
        top_p=config.opt_number("topP"),
        top_k=config.opt_int("topK", minimum=0),
        stop=tuple(config.str_list("stopSequences")),
        response_format=_parse_response_format(config),
        reasoning=gemini_reasoning.parse_thinking(config.opt_obj("thinkingConfig")),
        seed=config.opt_int("seed"),
        frequency_penalty=config.opt_number("frequencyPenalty"),
        presence_penalty=config.opt_number("presencePenalty"),
    )


def _parse_system(s: FieldReader | None) -> tuple[TextPart, ...]:
    if s is None:
        return ()
    return tuple(TextPart(p.req_str("text")) for _, p in s.items_of("parts"))


def _parse_contents(r: FieldReader) -> tuple[Message, ...]:
    messages: list[Message] = []
    calls: dict[str, list[str]] = {}  # Gemini call id or name -> unified ids not yet answered
    for turn, c in r.items_of("contents"):
        role = c.opt_str("role") or "user"
        if role not in ("user", "model"):
            raise InvalidRequest(f"{c.at('role')} must be 'user' or 'model'", param=c.at("role"))
        parts: list[Part] = []
        for number, (_, p) in enumerate(c.items_of("parts")):
            parts.extend(_parse_part(p, calls, call_nonce(turn, number)))
        messages.append(Message(Role.USER if role == "user" else Role.ASSISTANT, tuple(parts)))
    return tuple(messages)


def _parse_part(p: FieldReader, calls: dict[str, list[str]], nonce: str) -> list[Part]:
    signature = p.opt_str("thoughtSignature") or ""
    if p.has("functionCall"):
        call = p.req_obj("functionCall")
        name, gemini_id = call.req_str("name"), call.opt_str("id") or ""
        part = ToolUsePart(
            make_call_id(name, gemini_id, signature, nonce),
            name,
            call.opt_json_object("args") or EMPTY_OBJECT,
        )
        calls.setdefault(gemini_id or name, []).append(part.id)
        return [part]
    if p.has("functionResponse"):
        response = p.req_obj("functionResponse")
        name, gemini_id = response.req_str("name"), response.opt_str("id") or ""
        pending = calls.get(gemini_id or name)
        tool_use_id = pending.pop(0) if pending else make_call_id(name, gemini_id, "", nonce)
        return [_parse_function_response(response, tool_use_id)]
    if p.has("inlineData"):
        data = p.req_obj("inlineData")
        source = Base64Source(data.req_str("mimeType"), data.req_str("data"))
        return [_media_part(source, data.req_str("mimeType"))]
    if p.has("fileData"):
        data = p.req_obj("fileData")
        return [_media_part(URLSource(data.req_str("fileUri")), data.opt_str("mimeType") or "")]
    text = p.req_str("text")
    if p.opt_bool("thought"):
        foreign = read_foreign_signature(signature) if signature else None
        if foreign is not None:  # another provider's, carried through a Gemini client
            return [ThinkingPart(text, foreign)]
        return [ThinkingPart(text, signature_for_client(signature) if signature else "")]
    if signature:
        policy.dropped(p.at("thoughtSignature"), "signatures on text parts are not carried")
    return [TextPart(text)]


def _media_part(source: Base64Source | URLSource, mime_type: str) -> Part:
    if mime_type == _PDF:
        return DocumentPart(source)
    return ImagePart(source)


def _parse_function_response(r: FieldReader, tool_use_id: str) -> ToolResultPart:
    response = r.req_obj("response")
    for key in ("error", "output"):
        value = response.get(key)
        if isinstance(value, str) and list(response.present_keys()) == [key]:
            content: tuple[ToolResultContent, ...] = (TextPart(value),) if value else ()
            return ToolResultPart(tool_use_id, content, is_error=key == "error")
    text = r.req_json_object("response").text
    return ToolResultPart(tool_use_id, (TextPart(text),))


def _parse_tools(r: FieldReader) -> list[Tool]:
    tools: list[Tool] = []
    for _, group in r.items_of("tools"):
        for key in group.present_keys():
            if key != "functionDeclarations":
                raise policy.unsupported(
                    group.at(key), "Gemini's built-in tools run only on Gemini"
                )
        for _, f in group.items_of("functionDeclarations"):
            schema = f.opt_json_object("parametersJsonSchema") or f.opt_json_object("parameters")
            tools.append(Tool(f.req_str("name"), f.opt_str("description"), schema))
    return tools


def _parse_tool_choice(t: FieldReader | None) -> ToolChoice | None:
    c = t.opt_obj("functionCallingConfig") if t is not None else None
    if c is None:
        return None
    mode = c.opt_str("mode") or "AUTO"
    allowed = c.str_list("allowedFunctionNames")
    if mode == "ANY" and len(allowed) == 1:
        return ToolChoice(ToolChoiceMode.TOOL, allowed[0])
    if allowed:
        policy.dropped(c.at("allowedFunctionNames"), "only one forced function has a counterpart")
    modes = {"AUTO": ToolChoiceMode.AUTO, "ANY": ToolChoiceMode.ANY, "NONE": ToolChoiceMode.NONE}
    modes["VALIDATED"] = ToolChoiceMode.AUTO
    if mode not in modes:
        raise InvalidRequest(f"{c.at('mode')} {mode!r} is not a mode", param=c.at("mode"))
    return ToolChoice(modes[mode])


def _parse_response_format(config: FieldReader) -> ResponseFormat | None:
    mime = config.opt_str("responseMimeType")
    schema = config.opt_json_object("responseJsonSchema") or config.opt_json_object(
        "responseSchema"
    )
    if schema is not None:
        return ResponseFormat(ResponseFormatType.JSON_SCHEMA, schema=schema)
    if mime == "application/json":
        return ResponseFormat(ResponseFormatType.JSON_OBJECT)
    if mime not in (None, "text/plain"):
        raise policy.unsupported("generationConfig.responseMimeType", f"{mime!r} output")
    return None


# -- requests: render ----------------------------------------------------------------


def render_request(req: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> Gemini request JSON (the model goes into the URL, not the body)."""
    system = [p for p in req.system if p.text]
    messages = list(req.messages)
    while messages and messages[0].role in (Role.SYSTEM, Role.DEVELOPER):
        system.extend(p for p in messages.pop(0).parts if isinstance(p, TextPart) and p.text)
    out: dict[str, Any] = {"contents": _render_contents(messages, req.model)}
    if system:
        out["systemInstruction"] = {"parts": [{"text": p.text} for p in system]}
    if req.tools:
        declarations = [_render_tool(t, i) for i, t in enumerate(req.tools)]
        out["tools"] = [{"functionDeclarations": declarations}]
    tool_config = _render_tool_choice(req)
    if tool_config is not None:
        out["toolConfig"] = {"functionCallingConfig": tool_config}
    config = _render_generation_config(req)
    if config:
        out["generationConfig"] = config
    if req.parallel_tool_calls is not None:
        policy.dropped("parallel_tool_calls", "Gemini has no switch for parallel calls")
    for name in ("user", "logit_bias", "service_tier"):
        if getattr(req, name) is not None:
            policy.dropped(name, "Gemini has no counterpart")
    return out


def _render_contents(messages: list[Message], model: str) -> list[dict[str, Any]]:
    call_names = {
        part.id: part.name
        for message in messages
        for part in message.parts
        if isinstance(part, ToolUsePart)
    }
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role is Role.ASSISTANT else "user"
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            parts = [
                {"text": _SYSTEM_REMINDER.format(p.text)}
                for p in message.parts
                if isinstance(p, TextPart) and p.text
            ]
        else:
            parts = _render_parts(message.parts, call_names)
        if role == "model":
            _sign_first_call(parts, model)
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    if not turns:
        raise InvalidRequest("the request has no content Gemini can take", param="messages")
    return turns


def _sign_first_call(parts: list[dict[str, Any]], model: str) -> None:
    """A model turn whose calls carry no signature (history from another model)
    gets the documented placeholder on its first call; Gemini 3 requires one."""
    calls = [p for p in parts if "functionCall" in p]
    if (
        calls
        and not any("thoughtSignature" in p for p in calls)
        and gemini_reasoning.signs_calls(model)
    ):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def _render_parts(parts: tuple[Part, ...], call_names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
            if part.cache_control is not None:
                policy.dropped("cache_control", "Gemini caches prompts implicitly")
        elif isinstance(part, (ImagePart, DocumentPart)):
            out.append(_render_media(part))
        elif isinstance(part, ToolUsePart):
            out.append(_render_call(part))
        elif isinstance(part, ToolResultPart):
            out.extend(_render_result(part, call_names))
        elif isinstance(part, ThinkingPart):
            signature = signature_from_client(part.signature)
            if signature is None:
                policy.dropped("thinking", "only Gemini's own signed thoughts can be replayed")
            else:
                out.append({"text": part.text, "thought": True, "thoughtSignature": signature})
        else:
            policy.dropped("redacted_thinking", "only Anthropic can read it")
    return out


def _render_media(part: ImagePart | DocumentPart) -> dict[str, Any]:
    source = part.source
    if isinstance(source, Base64Source):
        return {"inlineData": {"mimeType": source.media_type, "data": source.data}}
    data = {"fileUri": source.url}
    if isinstance(part, DocumentPart):
        data = {"mimeType": _PDF, **data}
    return {"fileData": data}


def _render_call(part: ToolUsePart) -> dict[str, Any]:
    carry = read_call_id(part.id)
    call: dict[str, Any] = {"name": part.name, "args": part.input.value()}
    if carry is None:
        call["id"] = part.id
    elif carry.gemini_id:
        call["id"] = carry.gemini_id
    rendered: dict[str, Any] = {"functionCall": call}
    if carry is not None and carry.signature:
        rendered["thoughtSignature"] = carry.signature
    return rendered


def _render_result(part: ToolResultPart, call_names: dict[str, str]) -> list[dict[str, Any]]:
    carry = read_call_id(part.tool_use_id)
    name = call_names.get(part.tool_use_id) or (carry.name if carry is not None else None)
    if name is None:
        raise InvalidRequest(
            f"tool result {part.tool_use_id!r} answers no tool call in the conversation",
            param="messages",
        )
    text = "".join(p.text for p in part.content if isinstance(p, TextPart))
    response: dict[str, Any] = {
        "name": name,
        "response": {"error" if part.is_error else "output": text},
    }
    if carry is None:
        response["id"] = part.tool_use_id
    elif carry.gemini_id:
        response["id"] = carry.gemini_id
    out: list[dict[str, Any]] = [{"functionResponse": response}]
    out.extend(_render_media(p) for p in part.content if isinstance(p, ImagePart))
    return out


def _render_tool(tool: Tool, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    schema = tool.input_schema.value() if tool.input_schema is not None else None
    if isinstance(schema, dict) and schema.get("properties"):
        out["parameters"] = to_gemini_schema(schema, f"tools[{index}].parameters")
    if tool.strict is not None:
        policy.dropped("strict", "Gemini has no strict function schemas")
    return out


def _render_tool_choice(req: ChatRequest) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if not req.tools:
        policy.dropped("tool_choice", "the request has no tools")
        return None
    if choice.mode is ToolChoiceMode.TOOL:
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": choice.mode.value.upper()}


def _render_generation_config(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
        ("maxOutputTokens", req.max_tokens),
        ("seed", req.seed),
        ("frequencyPenalty", req.frequency_penalty),
        ("presencePenalty", req.presence_penalty),
    ):
        if value is not None:
            config[key] = value
    if req.stop:
        config["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.type is not ResponseFormatType.TEXT:
        config["responseMimeType"] = "application/json"
        if fmt.schema is not None:
            config["responseJsonSchema"] = fmt.schema.value()
    thinking = gemini_reasoning.render_thinking(req)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


# -- responses ---------------------------------------------------------------------------

_FROM_FINISH = {
    "STOP": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "SAFETY": StopReason.REFUSAL,
    "RECITATION": StopReason.REFUSAL,
    "BLOCKLIST": StopReason.REFUSAL,
    "PROHIBITED_CONTENT": StopReason.REFUSAL,
    "SPII": StopReason.REFUSAL,
    "IMAGE_SAFETY": StopReason.REFUSAL,
}
_TO_FINISH = {
    StopReason.END_TURN: "STOP",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.PAUSE_TURN: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.REFUSAL: "SAFETY",
}


def stop_reason(finish: str | None, called_tools: bool) -> StopReason | None:
    """Gemini finishReason -> StopReason. Gemini says STOP after function calls too;
    MALFORMED_FUNCTION_CALL, OTHER and unknown values read as END_TURN."""
    if finish is None:
        return None
    reason = _FROM_FINISH.get(finish, StopReason.END_TURN)
    if called_tools and reason is StopReason.END_TURN:
        return StopReason.TOOL_USE
    return reason


def finish_reason(reason: StopReason | None) -> str | None:
    return _TO_FINISH[reason] if reason is not None else None


def parse_usage(u: FieldReader | None) -> Usage:
    """``usageMetadata`` -> Usage. Gemini's prompt count includes cached tokens, and
    its candidates count excludes thought tokens (unified output includes them)."""
    if u is None:
        return Usage()
    prompt = (u.opt_int("promptTokenCount") or 0) + (u.opt_int("toolUsePromptTokenCount") or 0)
    cached = min(u.opt_int("cachedContentTokenCount") or 0, prompt)
    thoughts = u.opt_int("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=(u.opt_int("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": prompt + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    return out


def response_parts(content: FieldReader | None, response_id: str, calls_before: int) -> list[Part]:
    """A candidate's ``content.parts`` as unified parts (what the model may produce).
    Tool-call ids are derived from ``response_id`` and the number of the call in
    the answer (``calls_before`` calls came in earlier chunks of a stream)."""
    parts: list[Part] = []
    if content is None:
        return parts
    for path, p in content.items_of("parts"):
        if p.has("functionCall") or p.has("text"):
            number = calls_before + sum(isinstance(part, ToolUsePart) for part in parts)
            parts.extend(_parse_part(p, {}, call_nonce(response_id, number)))
        else:
            policy.dropped(path, "only text, thoughts and function calls are converted")
    return parts


def parse_response(body: object) -> ChatResponse:
    """Gemini GenerateContentResponse JSON -> ChatResponse. Raises UpstreamError if malformed."""
    r = FieldReader(body, error=UpstreamError)
    candidates = r.opt_list("candidates") or []
    parts: list[Part] = []
    finish: str | None = None
    if candidates:
        if len(candidates) > 1:
            policy.dropped("candidates[1:]", "only the first candidate is converted")
        candidate = r.child(candidates[0], "candidates[0]")
        parts = response_parts(candidate.opt_obj("content"), r.opt_str("responseId") or "", 0)
        finish = candidate.opt_str("finishReason")
    else:
        feedback = r.opt_obj("promptFeedback")
        if feedback is None:
            raise UpstreamError("upstream response has no candidates", param="candidates")
        if feedback.opt_str("blockReason"):
            finish = "SAFETY"  # the prompt itself was blocked: nothing was generated
    return ChatResponse(
        id=r.opt_str("responseId") or "",
        model=r.opt_str("modelVersion") or "",
        parts=tuple(parts),
        stop_reason=stop_reason(finish, any(isinstance(p, ToolUsePart) for p in parts)),
        usage=parse_usage(r.opt_obj("usageMetadata")),
    )


def render_part(part: Part) -> dict[str, Any] | None:
    """One assistant output part as a Gemini part (None: no counterpart)."""
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ThinkingPart):
        out: dict[str, Any] = {"text": part.text, "thought": True}
        signature = signature_from_client(part.signature)
        if signature is not None:
            out["thoughtSignature"] = signature
        elif part.signature:  # another provider's: the Gemini client carries it back
            out["thoughtSignature"] = carry_foreign_signature(part.signature)
        return out
    if isinstance(part, ToolUsePart):
        return _render_call(part)
    return None


def render_response(resp: ChatResponse, *, model: str) -> dict[str, Any]:
    """ChatResponse -> Gemini GenerateContentResponse JSON, reporting ``model``."""
    parts = []
    for part in resp.parts:
        rendered = render_part(part)
        if rendered is None:
            policy.dropped(type(part).__name__, "not a Gemini output part")
        else:
            parts.append(rendered)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    finish = finish_reason(resp.stop_reason)
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": render_usage(resp.usage),
        "modelVersion": model,
        "responseId": response_id(ID_PREFIX, resp.id),
    }


# -- token counts ---------------------------------------------------------------------


def render_token_count(tokens: int) -> dict[str, Any]:
    """A ``:countTokens`` answer."""
    return {"totalTokens": tokens}


def parse_token_count(body: object) -> int | None:
    """The count in a ``:countTokens`` answer (None: none there)."""
    count = body.get("totalTokens") if isinstance(body, dict) else None
    return count if type(count) is int and count >= 0 else None


# -- errors ----------------------------------------------------------------------------

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_KINDS = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "INTERNAL": "api_error",
}


def render_error(status: int, kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    """Google's error shape: ``{"error": {"code", "message", "status"}}``."""
    if param is not None and param not in message:
        message = f"{param}: {message}"
    name = _STATUS_NAMES.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": status, "message": message, "status": name}}


def error_of(data: object, status: int) -> tuple[str, str]:
    """A decoded Google error body (an object, or the one-element array streams use)
    -> (neutral kind, client-safe message)."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        raw_status, raw_message = error.get("status"), error.get("message")
        kind = _KINDS.get(raw_status) if isinstance(raw_status, str) else None
        message = raw_message if isinstance(raw_message, str) else None
        return kind or kind_for_status(status), relay_message(message, status)
    return kind_for_status(status), relay_message(None, status)


def parse_error(status: int, body: bytes) -> tuple[str, str]:
    """An upstream Gemini error body -> (neutral kind, client-safe message)."""
    return error_of(decode_json(body), status)
