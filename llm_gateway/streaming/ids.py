"""Response and tool-call ids in the client's format.

Theory of operation: response ids follow the client format's style
(``formats.ids.response_id``). Tool-call ids are never rewritten (the client
sends them back and they must match), only made up when an upstream omitted
one.
"""

from __future__ import annotations

import uuid

from llm_gateway.formats.ids import response_id

__all__ = ["new_tool_call_id", "response_id"]


def new_tool_call_id() -> str:
    """An id for a tool call whose upstream did not give one."""
    return "call_" + uuid.uuid4().hex[:24]
