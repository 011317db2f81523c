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

from collections.abc import Callable
from typing import Any

__all__ = [
    "COUNT_ANSWERS",
    "anthropic_count_request",
    "gemini_count_request",
    "openai_input_tokens_request",
    "read_anthropic_count",
    "read_gemini_count",
    "read_openai_input_tokens",
]

#: a token count as each client format's counting endpoint answers it
COUNT_ANSWERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "anthropic-messages": lambda tokens: {"input_tokens": tokens},
}

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


# --- chat completions -> the Responses API's input ----------------------------------


def _input_part(part: object, assistant: bool) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind == "text":
        return {"type": "output_text" if assistant else "input_text", "text": part.get("text")}
    if kind == "refusal":
        return {"type": "refusal", "refusal": part.get("refusal")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = image.get("detail") if isinstance(image, dict) else None
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind == "file":
        given = part.get("file")
        return {"type": "input_file", **given} if isinstance(given, dict) else None
    return None


def _content(content: object, assistant: bool) -> object:
    if not isinstance(content, list):
        return content if content is not None else ""
    parts = [_input_part(p, assistant) for p in content]
    return [p for p in parts if p is not None]


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def _items(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        output = _text_of(message.get("content"))
        call_id = message.get("tool_call_id")
        return [{"type": "function_call_output", "call_id": call_id, "output": output}]
    items: list[dict[str, Any]] = []
    assistant = role == "assistant"
    content = message.get("content")
    if content not in (None, "", []) or not assistant:
        items.append({"role": role, "content": _content(content, assistant)})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments") or "{}",
                }
            )
    return items


def _tool(tool: object) -> dict[str, Any] | None:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict):
        return None
    result: dict[str, Any] = {
        "type": "function",
        "name": function.get("name"),
        "parameters": function.get("parameters") or {"type": "object", "properties": {}},
        # Responses tools are strict unless told otherwise; chat tools are not
        "strict": function.get("strict") is True,
    }
    if function.get("description"):
        result["description"] = function["description"]
    return result


def _tool_choice(choice: object) -> object:
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict):
            return {"type": "function", "name": function.get("name")}
    return choice


def _text_format(response_format: object) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    schema = response_format.get("json_schema")
    if kind == "json_schema" and isinstance(schema, dict):
        return {"format": {"type": "json_schema", **schema}}
    if kind == "json_object":
        return {"format": {"type": "json_object"}}
    return None


def openai_input_tokens_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat-completions body as the ``/v1/responses/input_tokens`` body."""
    items: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            items.extend(_items(message))
    result: dict[str, Any] = {"model": model, "input": items}
    tools = [t for t in (_tool(t) for t in body.get("tools") or ()) if t is not None]
    if tools:
        result["tools"] = tools
    if "tool_choice" in body:
        result["tool_choice"] = _tool_choice(body["tool_choice"])
    if "parallel_tool_calls" in body:
        result["parallel_tool_calls"] = body["parallel_tool_calls"]
    if isinstance(body.get("reasoning_effort"), str):
        result["reasoning"] = {"effort": body["reasoning_effort"]}
    text = _text_format(body.get("response_format"))
    if text is not None:
        result["text"] = text
    return result
