"""OpenAI (legacy) completions streams: the chat converters, reshaped.

Theory of operation: a completions stream is the chat stream's simpler
sibling: ``text_completion`` chunks whose ``choices[0].text`` pieces make one
text, a chunk with ``finish_reason``, an optional usage chunk (empty
``choices``) and ``data: [DONE]``. Its state machine, usage and error rules
are the chat stream's, so both classes here are the chat classes with the
chunk shape swapped (see ``openai_chat`` for the rules):

* the parser reads ``choices[0].text`` where the chat parser reads
  ``choices[0].delta`` (as if it were ``delta.content``);
* the renderer writes ``{"text": ..., "index": 0, "logprobs": null,
  "finish_reason": ...}`` choices, no role chunk, and only text: a
  completions client has no place for thinking or tool calls, so those are
  dropped.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from llm_gateway.streaming.events import (
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamError,
    TextDelta,
    UnifiedEvent,
)
from llm_gateway.streaming.openai_chat import OpenAIChatParser, OpenAIChatRenderer

__all__ = ["OpenAICompletionsParser", "OpenAICompletionsRenderer"]


class OpenAICompletionsParser(OpenAIChatParser):
    """Upstream completions stream -> unified events. One instance per stream."""

    __slots__ = ()

    def _delta_of(self, choice: dict[str, Any]) -> dict[str, Any] | None:
        text = choice.get("text")
        return {"content": text} if isinstance(text, str) else None


class OpenAICompletionsRenderer(OpenAIChatRenderer):
    """Unified events -> ``text_completion`` chunk SSE bytes for one client stream."""

    __slots__ = ()

    _OBJECT: ClassVar[str] = "text_completion"
    _ID_PREFIX: ClassVar[str] = "cmpl-"

    def feed(self, event: UnifiedEvent) -> bytes:
        if isinstance(event, (TextDelta, MessageDelta, MessageStart, MessageStop, StreamError)):
            return super().feed(event)
        return b""  # thinking, tool calls and their block stops: nothing a completion shows

    def _opening(self) -> bytes:
        return b""

    def _text_chunk(self, text: str) -> bytes:
        return self._choice(json.dumps(text), "null")

    def _finish_line(self, reason: str) -> bytes:
        return self._choice('""', '"' + reason + '"')

    def _choice(self, text: str, finish: str) -> bytes:
        choice = '"choices":[{"text":' + text + ',"index":0,"logprobs":null,"finish_reason":'
        return ("data: " + self._head + choice + finish + "}]}\n\n").encode()
