"""A complete ``ChatResponse`` as the unified events of a stream: ``accumulate`` reversed.

Theory of operation: some upstreams answer a streaming request with one whole
JSON body. A client that asked for a stream can read only a stream, so the
gateway parses that body and replays it as unified events, which the client
format's renderer turns into the client's SSE like any upstream stream:
``MessageStart`` (id, model, usage), then per part, at its own block index, its
content in one delta (text, thinking and its signature, redacted thinking, or a
tool call's start and its arguments) and a ``BlockStop``, then ``MessageDelta``
(stop reason and sequence, usage) and ``MessageStop``. Empty text parts are
left out, as a stream would not open a block for them.
``accumulate(events_of(response))`` gives ``response`` back (but ``created``,
which streams do not carry).
"""

from __future__ import annotations

from llm_gateway.formats.unified import (
    ChatResponse,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolUsePart,
)
from llm_gateway.streaming.events import (
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    RedactedThinking,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    UnifiedEvent,
)

__all__ = ["events_of"]


def events_of(response: ChatResponse) -> list[UnifiedEvent]:
    """The unified events of a stream that says exactly ``response``."""
    events: list[UnifiedEvent] = [MessageStart(response.id, response.model, response.usage)]
    index = 0
    for part in response.parts:
        if isinstance(part, TextPart):
            if not part.text:
                continue
            events.append(TextDelta(index, part.text))
        elif isinstance(part, ThinkingPart):
            events.append(ThinkingDelta(index, part.text))
            if part.signature:
                events.append(SignatureDelta(index, part.signature))
        elif isinstance(part, RedactedThinkingPart):
            events.append(RedactedThinking(index, part.data))
        elif isinstance(part, ToolUsePart):
            events.append(ToolCallStart(index, part.id, part.name))
            events.append(ToolArgsDelta(index, part.input.text))
        else:  # a response carries no other kind of part
            raise TypeError(f"a response cannot hold {type(part).__name__}")
        events.append(BlockStop(index))
        index += 1
    events.append(MessageDelta(response.stop_reason, response.stop_sequence, response.usage))
    events.append(MessageStop())
    return events
