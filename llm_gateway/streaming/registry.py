"""The stream formats the gateway speaks, in one explicit table.

Theory of operation: ``STREAM_FORMATS`` maps a format name (the same names the
non-streaming codecs use) to a ``StreamFormat``: factories for a parser (an
upstream's SSE events -> unified events), a renderer (unified events -> a
client's SSE bytes), a model-name rewriter (same-format passthrough), and
the error event that ends a client stream in that format. Each factory makes
a fresh, independent object for one stream. Shared code looks
formats up here and never tests a format's name. A server streams like this::

    decoder = SSEDecoder()
    parser = STREAM_FORMATS[upstream].parser_factory()
    renderer = STREAM_FORMATS[client].renderer_factory(
        model=client_model, include_usage=wants_usage, created=int(time.time())
    )
    for chunk in upstream_chunks:
        for event in decoder.feed(chunk):
            for unified in parser.feed(event):
                send(renderer.feed(unified))
    for event in decoder.close():
        for unified in parser.feed(event):
            send(renderer.feed(unified))
    for unified in parser.finish():
        send(renderer.feed(unified))
    send(renderer.finish())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from llm_gateway.formats.unified import Usage
from llm_gateway.streaming import (
    anthropic_messages,
    gemini_generate_content,
    openai_chat,
    openai_responses,
)
from llm_gateway.streaming.anthropic_messages import (
    AnthropicMessagesParser,
    AnthropicMessagesRenderer,
)
from llm_gateway.streaming.events import StreamError, UnifiedEvent
from llm_gateway.streaming.gemini_generate_content import (
    GeminiModelRewriter,
    GeminiStreamParser,
    GeminiStreamRenderer,
)
from llm_gateway.streaming.openai_chat import OpenAIChatParser, OpenAIChatRenderer
from llm_gateway.streaming.openai_completions import (
    OpenAICompletionsParser,
    OpenAICompletionsRenderer,
)
from llm_gateway.streaming.openai_responses import (
    ResponsesModelRewriter,
    ResponsesStreamParser,
    ResponsesStreamRenderer,
)
from llm_gateway.streaming.rewrite import AnthropicModelRewriter, OpenAIModelRewriter
from llm_gateway.streaming.sse import SSEEvent

__all__ = [
    "STREAM_FORMATS",
    "RendererFactory",
    "RewriterFactory",
    "StreamFormat",
    "StreamParser",
    "StreamRenderer",
    "StreamRewriter",
]


class StreamParser(Protocol):
    """Upstream SSE events -> unified events; ``finish`` at the end of upstream bytes
    completes the stream or yields a StreamError if it was cut short."""

    def feed(self, event: SSEEvent) -> list[UnifiedEvent]: ...

    def finish(self) -> list[UnifiedEvent]: ...


class StreamRenderer(Protocol):
    """Unified events -> client SSE bytes; ``finish`` ends the client stream cleanly
    (an error event if the unified stream never completed)."""

    def feed(self, event: UnifiedEvent) -> bytes: ...

    def finish(self) -> bytes: ...


class StreamRewriter(Protocol):
    """Same-format passthrough with the client's model name; ``usage`` is the latest
    usage the upstream reported (None if none yet)."""

    usage: Usage | None

    def feed(self, event: SSEEvent) -> bytes: ...

    def finish(self) -> bytes: ...


class RendererFactory(Protocol):
    def __call__(self, *, model: str, include_usage: bool, created: int) -> StreamRenderer: ...


class RewriterFactory(Protocol):
    def __call__(
        self, *, model: str | None, strip_usage: bool, id_prefix: str | None = None
    ) -> StreamRewriter: ...


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """One format's streaming face. ``error_event`` ends a client stream that
    cannot go on (for passthrough streams, which have no renderer).

    ``end_marks`` and ``answer_marks`` let a passthrough stream, which is not
    parsed, tell from its bytes how far it got: any end mark means its final
    event has passed (nothing after it matters to the client), any answer mark
    that the answer is whole (a stop or finish reason) even if that final event
    never comes. Both are written with and without the space after the colon.

    ``keepalive`` is what a silent stream gets now and then, between events, so
    that clients and proxies do not give up on it: something every SDK of the
    format skips (an SSE comment, or the format's own ``ping`` event).

    ``id_prefix`` is the style of the format's response ids; ``id_marks`` show,
    in a stream's first event, an id already in that style (the passthrough
    pipes then leave ids alone).

    ``array_stream``: an upstream may answer a stream request of this format
    with ``application/json``, a JSON array of the events' data (Gemini without
    ``alt=sse``); the pipes then read it through ``json_array_reader``.
    """

    name: str
    parser_factory: Callable[[], StreamParser]
    renderer_factory: RendererFactory
    rewriter_factory: RewriterFactory
    error_event: Callable[[StreamError], bytes]
    end_marks: tuple[bytes, ...]
    answer_marks: tuple[bytes, ...]
    id_prefix: str
    id_marks: tuple[bytes, ...]
    keepalive: bytes = b": keepalive\n\n"
    array_stream: bool = False


def _openai_chat_renderer(*, model: str, include_usage: bool, created: int) -> StreamRenderer:
    return OpenAIChatRenderer(model=model, include_usage=include_usage, created=created)


def _openai_completions_renderer(
    *, model: str, include_usage: bool, created: int
) -> StreamRenderer:
    return OpenAICompletionsRenderer(model=model, include_usage=include_usage, created=created)


def _anthropic_renderer(*, model: str, include_usage: bool, created: int) -> StreamRenderer:
    # Anthropic streams always carry usage and have no creation time.
    return AnthropicMessagesRenderer(model=model)


def _gemini_renderer(*, model: str, include_usage: bool, created: int) -> StreamRenderer:
    # Gemini chunks always carry usage and have no creation time.
    return GeminiStreamRenderer(model=model)


def _openai_rewriter(
    *, model: str | None, strip_usage: bool, id_prefix: str | None = None
) -> StreamRewriter:
    return OpenAIModelRewriter(model=model, strip_usage=strip_usage, id_prefix=id_prefix)


def _anthropic_rewriter(
    *, model: str | None, strip_usage: bool, id_prefix: str | None = None
) -> StreamRewriter:
    # Anthropic usage is part of message_start/message_delta; nothing to strip.
    return AnthropicModelRewriter(model=model, id_prefix=id_prefix)


def _gemini_rewriter(
    *, model: str | None, strip_usage: bool, id_prefix: str | None = None
) -> StreamRewriter:
    # Gemini usage rides on every chunk; nothing to strip. Its response ids have
    # no style of their own to restore.
    return GeminiModelRewriter(model=model)


def _responses_renderer(*, model: str, include_usage: bool, created: int) -> StreamRenderer:
    # The terminal event always carries usage.
    return ResponsesStreamRenderer(model=model, created=created)


def _responses_rewriter(
    *, model: str | None, strip_usage: bool, id_prefix: str | None = None
) -> StreamRewriter:
    # Usage rides on the terminal event; ids are ``resp_`` on both sides.
    return ResponsesModelRewriter(model=model)


def _marks(*texts: str) -> tuple[bytes, ...]:
    """Each ``name:value`` mark as written with and without a space after the colon."""
    out: list[bytes] = []
    for text in texts:
        name, _, value = text.partition(":")
        out += [f"{name}:{value}".encode(), f"{name}: {value}".encode()]
    return tuple(out)


# [DONE] ends an OpenAI stream; so does an error chunk (nothing follows one).
_OPENAI_END = _marks("data:[DONE]", 'data:{"error":')
_OPENAI_ANSWER = _marks('"finish_reason":"')

STREAM_FORMATS: dict[str, StreamFormat] = {
    "openai-chat": StreamFormat(
        "openai-chat",
        OpenAIChatParser,
        _openai_chat_renderer,
        _openai_rewriter,
        openai_chat.error_event,
        _OPENAI_END,
        _OPENAI_ANSWER,
        "chatcmpl-",
        _marks('"id":"chatcmpl-'),
    ),
    "openai-completions": StreamFormat(
        "openai-completions",
        OpenAICompletionsParser,
        _openai_completions_renderer,
        _openai_rewriter,
        openai_chat.error_event,
        _OPENAI_END,
        _OPENAI_ANSWER,
        "cmpl-",
        _marks('"id":"cmpl-'),
    ),
    "anthropic-messages": StreamFormat(
        "anthropic-messages",
        AnthropicMessagesParser,
        _anthropic_renderer,
        _anthropic_rewriter,
        anthropic_messages.error_event,
        _marks("event:message_stop", "event:error"),
        _marks('"stop_reason":"'),
        "msg_",
        _marks('"id":"msg_'),
        keepalive=b'event: ping\ndata: {"type": "ping"}\n\n',
    ),
    "gemini-generate-content": StreamFormat(
        "gemini-generate-content",
        GeminiStreamParser,
        _gemini_renderer,
        _gemini_rewriter,
        gemini_generate_content.error_event,
        # No end event: an error object ends a stream, and so does the chunk
        # with the finish reason (it is the last one Gemini sends).
        _marks('data:{"error":', '"finishReason":"'),
        _marks('"finishReason":"'),
        "",
        (),
        array_stream=True,
    ),
    "openai-responses": StreamFormat(
        "openai-responses",
        ResponsesStreamParser,
        _responses_renderer,
        _responses_rewriter,
        openai_responses.error_event,
        _marks(
            "event:response.completed",
            "event:response.incomplete",
            "event:response.failed",
            "event:error",
        ),
        _marks("event:response.completed", "event:response.incomplete"),
        "resp_",
        _marks('"id":"resp_'),
    ),
}
