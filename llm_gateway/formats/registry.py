"""Every wire format the gateway speaks, in one explicit table.

Theory of operation: a ``Format`` bundles one codec module's six functions
under its name. Callers look formats up in ``FORMATS`` by name and never test
a format's name themselves. Adding a format means one new codec module and
one line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from llm_gateway.formats import (
    anthropic_messages,
    gemini_generate_content,
    openai_chat,
    openai_completions,
    openai_responses,
)
from llm_gateway.formats.unified import ChatRequest, ChatResponse
from llm_gateway.formats.validate import RequestShape

__all__ = ["FORMATS", "Format", "get_format"]


class ParseRequest(Protocol):
    def __call__(self, body: object) -> ChatRequest: ...


class RenderRequest(Protocol):
    def __call__(self, req: ChatRequest) -> dict[str, Any]: ...


class ParseResponse(Protocol):
    def __call__(self, body: object) -> ChatResponse: ...


class RenderResponse(Protocol):
    def __call__(self, resp: ChatResponse, *, model: str) -> dict[str, Any]: ...


class RenderError(Protocol):
    def __call__(
        self, status: int, kind: str, message: str, param: str | None = None
    ) -> dict[str, Any]: ...


class ParseError(Protocol):
    def __call__(self, status: int, body: bytes) -> tuple[str, str]: ...


@dataclass(frozen=True, slots=True)
class Format:
    """One wire format's non-streaming codec.

    * ``parse_request(body)``: client JSON -> ChatRequest (raises InvalidRequest).
    * ``render_request(req)``: ChatRequest -> upstream JSON (raises InvalidRequest
      when the request cannot be expressed in this format).
    * ``parse_response(body)``: upstream JSON -> ChatResponse (raises UpstreamError).
    * ``render_response(resp, model=...)``: ChatResponse -> client JSON, with the
      model name the client asked for.
    * ``render_error(status, kind, message, param)``: an error body in this format.
    * ``parse_error(status, body)``: an upstream error body -> (kind, message).
    * ``id_prefix``: the style of the format's response ids (``chatcmpl-``, ...).
    * ``request_shape``: what every request must look like, checked before any
      upstream call (``formats.validate.check_request``).
    """

    name: str
    parse_request: ParseRequest
    render_request: RenderRequest
    parse_response: ParseResponse
    render_response: RenderResponse
    render_error: RenderError
    parse_error: ParseError
    id_prefix: str
    request_shape: RequestShape


class Codec(Protocol):
    """What a codec module provides (mypy checks each module against this)."""

    def parse_request(self, body: object) -> ChatRequest: ...
    def render_request(self, req: ChatRequest) -> dict[str, Any]: ...
    def parse_response(self, body: object) -> ChatResponse: ...
    def render_response(self, resp: ChatResponse, *, model: str) -> dict[str, Any]: ...
    def render_error(
        self, status: int, kind: str, message: str, param: str | None = None
    ) -> dict[str, Any]: ...
    def parse_error(self, status: int, body: bytes) -> tuple[str, str]: ...

    @property
    def ID_PREFIX(self) -> str: ...

    @property
    def REQUEST_SHAPE(self) -> RequestShape: ...


def _codec(name: str, module: Codec) -> Format:
    return Format(
        name=name,
        parse_request=module.parse_request,
        render_request=module.render_request,
        parse_response=module.parse_response,
        render_response=module.render_response,
        render_error=module.render_error,
        parse_error=module.parse_error,
        id_prefix=module.ID_PREFIX,
        request_shape=module.REQUEST_SHAPE,
    )


FORMATS: dict[str, Format] = {
    "openai-chat": _codec("openai-chat", openai_chat),
    "openai-completions": _codec("openai-completions", openai_completions),
    "anthropic-messages": _codec("anthropic-messages", anthropic_messages),
    "gemini-generate-content": _codec("gemini-generate-content", gemini_generate_content),
    "openai-responses": _codec("openai-responses", openai_responses),
}


def get_format(name: str) -> Format:
    """The format called ``name``; KeyError lists the known names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}") from None
