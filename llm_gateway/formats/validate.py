"""The shape every request of a format must have, checked before any upstream call.

Theory of operation: each codec declares its format's ``RequestShape`` (which
field holds the conversation, the roles a message may have, whether
``max_tokens`` is required), listed with the codec in the format registry.
``check_request`` walks the top-level fields and the message list once,
without copying anything, and raises ``InvalidRequest`` (a 400 in the
client's format) naming the first field that is wrong. Passthrough relies on
it: a same-format request goes upstream as the client's bytes, so this is the
only check such a request gets. Deeper content (blocks, tool schemas) is the
upstream's to judge, or the converter's when the formats differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_gateway.errors import InvalidRequest

__all__ = ["RequestShape", "check_request", "unwrap_count"]


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What a format's requests must look like at the top level."""

    #: the field holding the conversation: a non-empty list of message objects
    #: (None: the format has none, see ``prompt``)
    messages: str | None
    #: the roles a message may have
    roles: frozenset[str]
    #: the field holding a prompt instead (legacy completions)
    prompt: str | None = None
    #: output-length fields: positive integers when present
    max_tokens: tuple[str, ...] = ("max_tokens",)
    #: a request for an answer must give ``max_tokens[0]`` (not a token count)
    max_tokens_required: bool = False
    #: fields that must be lists when present
    lists: tuple[str, ...] = ("tools",)
    #: a token count may hold the whole request under this field (Gemini's
    #: ``countTokens``: ``{"generateContentRequest": {...}}``), read as the request
    count_wrapper: str | None = None


def unwrap_count(shape: RequestShape, body: dict[str, Any]) -> dict[str, Any]:
    """The request a token count ``body`` holds: the object under the shape's
    ``count_wrapper`` when there is one (less its ``model``: the path or the
    body names it), else ``body`` itself."""
    inner = body.get(shape.count_wrapper) if shape.count_wrapper else None
    if inner is None:
        return body
    if not isinstance(inner, dict):
        raise InvalidRequest(
            f"'{shape.count_wrapper}' must be an object", param=shape.count_wrapper
        )
    if shape.messages is not None and shape.messages in body:
        raise InvalidRequest(
            f"'{shape.messages}' and '{shape.count_wrapper}' cannot both be given",
            param=shape.count_wrapper,
        )
    request = {key: value for key, value in inner.items() if key != "model"}
    if "model" in body:
        request["model"] = body["model"]
    return request


def check_request(shape: RequestShape, body: dict[str, Any], *, counting: bool = False) -> None:
    """Raise InvalidRequest naming the first field of ``body`` that breaks ``shape``.

    ``counting``: the request only counts tokens (no output, so no ``max_tokens``).
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    if shape.messages is not None:
        _check_messages(shape, shape.messages, body.get(shape.messages))
    if shape.prompt is not None:
        _check_prompt(shape.prompt, body.get(shape.prompt))
    for index, name in enumerate(shape.max_tokens):
        value = body.get(name)
        if value is None:
            if index == 0 and shape.max_tokens_required and not counting:
                raise InvalidRequest(f"'{name}' is required", param=name)
            continue
        if type(value) is not int or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer", param=name)
    for name in shape.lists:
        if body.get(name) is not None and not isinstance(body[name], list):
            raise InvalidRequest(f"'{name}' must be a list", param=name)


def _check_messages(shape: RequestShape, name: str, messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            f"'{name}' is required and must be a non-empty list of messages", param=name
        )
    roles = shape.roles
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{name}[{index}]' must be an object", param=f"{name}[{index}]")
        role = message.get("role")
        if role not in roles:
            allowed = ", ".join(f"'{r}'" for r in sorted(roles))
            raise InvalidRequest(
                f"'{name}[{index}].role' must be one of {allowed}",
                param=f"{name}[{index}].role",
            )


def _check_prompt(name: str, prompt: object) -> None:
    """A string, or a non-empty list of strings, of token ids, or of token-id lists."""
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        if isinstance(first, str) and all(isinstance(p, str) for p in prompt):
            return
        if type(first) is int and all(type(p) is int for p in prompt):
            return
        if all(isinstance(p, list) and all(type(t) is int for t in p) for p in prompt):
            return
    raise InvalidRequest(
        f"'{name}' is required and must be a string or a list of strings or token ids",
        param=name,
    )
