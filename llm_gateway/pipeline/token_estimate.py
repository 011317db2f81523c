"""A documented estimate for token counts (`/v1/messages/count_tokens`, `/v1/responses/input_tokens`) when no upstream of the client's format can count.

The estimate is the number of characters of every text the request carries
(system, message text, tool results, tool definitions as JSON) divided by
four, rounded up: the usual rule of thumb for English text with BPE
tokenisers. It is an estimate, and the response says so in
``x-llm-gateway-estimate: true``.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["estimate_input_tokens"]

CHARS_PER_TOKEN = 4


def _text_of(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_of(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") == "image":
            return 0
        return sum(_text_of(v) for k, v in value.items() if k not in ("type", "cache_control"))
    return 0


def estimate_input_tokens(body: dict[str, Any]) -> int:
    chars = sum(_text_of(body.get(k)) for k in ("system", "messages", "instructions", "input"))
    tools = body.get("tools")
    if tools:
        chars += len(json.dumps(tools, separators=(",", ":")))
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))
