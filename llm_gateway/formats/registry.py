"""Every wire format the gateway speaks, in one explicit table.

Theory of operation: a ``Format`` bundles one codec module's six functions
under its name. Callers look formats up in ``FORMATS`` by name and never test
a format's name themselves. Adding a format means one new codec module and
one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from llm_gateway.formats import (
    anthropic_messages,
    gemini_generate_content,
    openai_chat,
    openai_completions,
    openai_responses,
)
from llm_gateway.formats.unified import ChatRequest, ChatResponse
from llm_gateway.formats.upstream_fit import (
    ANTHROPIC_FIT,
    NO_FIT,
    OPENAI_CHAT_FIT,
    RESPONSES_FIT,
    UpstreamFit,
)
from llm_gateway.formats.validate import RequestShape

__all__ = ["FORMATS", "Format", "TokenCount", "get_format"]


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
class TokenCount:
    """How a format answers a token count: ``render(n)`` is the answer's body,
    ``parse(body)`` reads the count back (None: the body holds none)."""

    render: Callable[[int], dict[str, Any]]
    parse: Callable[[object], int | None]


def _input_tokens(body: object) -> int | None:
    count = body.get("input_tokens") if isinstance(body, dict) else None
    return count if type(count) is int and count >= 0 else None


#: ``{"input_tokens": n}``: Anthropic's ``count_tokens`` answer
INPUT_TOKENS = TokenCount(lambda n: {"input_tokens": n}, _input_tokens)


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
    * ``token_count``: the shape of a token-count answer in this format.
    * ``model_field``: the response field naming the model (a passthrough
      answer shows the client's name there).
    * ``fit_upstream``: edits a body bound for an upstream in this format so
      the upstream accepts what the gateway carried for another provider
      (``formats.upstream_fit``: over-long tool-call ids, foreign signatures).
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
    token_count: TokenCount = INPUT_TOKENS
    model_field: str = "model"
    fit_upstream: UpstreamFit = NO_FIT


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
    "openai-chat": replace(_codec("openai-chat", openai_chat), fit_upstream=OPENAI_CHAT_FIT),
    "openai-completions": _codec("openai-completions", openai_completions),
    "anthropic-messages": replace(
        _codec("anthropic-messages", anthropic_messages), fit_upstream=ANTHROPIC_FIT
    ),
    "gemini-generate-content": replace(
        _codec("gemini-generate-content", gemini_generate_content),
        token_count=TokenCount(
            gemini_generate_content.render_token_count, gemini_generate_content.parse_token_count
        ),
        model_field="modelVersion",
    ),
    "openai-responses": replace(
        _codec("openai-responses", openai_responses),
        token_count=TokenCount(
            lambda n: {"object": "response.input_tokens", "input_tokens": n}, _input_tokens
        ),
        fit_upstream=RESPONSES_FIT,
    ),
}


def get_format(name: str) -> Format:
    """The format called ``name``; KeyError lists the known names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}") from None
