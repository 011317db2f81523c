"""Codex's remote compaction, answered by the gateway for upstreams that cannot.

Theory of operation. Codex's built-in OpenAI provider (and its Azure one)
shortens a long session by sending an ordinary ``POST /v1/responses`` whose
``input`` ends with ``{"type": "compaction_trigger"}``; it expects a
response with exactly one output item ``{"type": "compaction", "id",
"encrypted_content"}`` and ``response.completed``. It then replaces its
history with the user messages it keeps plus that item, and sends the item
back as input on every later turn. OpenAI fills ``encrypted_content`` with
state only it can read; another upstream has no such thing. For those the
gateway asks the same upstream for a summary instead:

* ``summarising_request``: the request without the trigger, plus one user
  message, ``SUMMARY_INSTRUCTION`` (fixed, documented in docs/conversion.md),
  not streamed, tools kept (an upstream may refuse a history with tool calls
  but no tools) and ``tool_choice: "none"``;
* ``summary_of`` reads the summary text out of that answer (in the Responses
  shape, after the usual conversion back), and ``compaction_response``
  answers the client (as a stream too: ``pipeline.compaction``) with the one compaction item whose
  ``encrypted_content`` is ``CARRIED_PREFIX`` + the summary sealed by the
  caller (``pipeline.compaction``: the gateway's secret key, bound to the
  gateway key), so the gateway keeps nothing;
* on later turns ``expand_compactions`` replaces each such item with a user
  message, ``SUMMARY_HEADER`` + the summary, before anything else reads the
  request. An item the caller cannot open (forged, altered, another key's)
  is refused, so no client can slip in text as a gateway-made summary.
  Compaction items without the prefix are OpenAI's own and stay as they are.

Everything here is pure; sealing and opening are the caller's functions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = [
    "CARRIED_PREFIX",
    "ITEM_TYPE",
    "SUMMARY_HEADER",
    "SUMMARY_INSTRUCTION",
    "TRIGGER_TYPE",
    "carried_summary",
    "compaction_item",
    "compaction_response",
    "expand_compactions",
    "is_compaction_request",
    "summarising_request",
    "summary_of",
]

TRIGGER_TYPE = "compaction_trigger"
ITEM_TYPE = "compaction"
#: marks ``encrypted_content`` the gateway made (the rest is the sealed summary)
CARRIED_PREFIX = "llmgw-compaction:"
#: the one instruction the summarising request ends with
SUMMARY_INSTRUCTION = (
    "The conversation so far is about to be replaced by a summary, because it has grown "
    "too long. Write that summary now, for the assistant that will continue the work "
    "from it alone. Include: the user's goals and requests; the progress made and the "
    "decisions taken, with their reasons; the current state of the work (files, commands, "
    "results, errors) with exact names, paths, identifiers and values; the constraints "
    "and preferences stated; what remains to be done, as concrete next steps. Write it "
    "as plain text. Do not call any tool, and do not continue the work itself."
)
#: what a summary is introduced with when it stands in for the compacted history
SUMMARY_HEADER = "Summary of the earlier conversation, written when its history was compacted:\n\n"
#: fields of the client's request the summarising request leaves out
_NOT_SUMMARISED = ("stream", "stream_options", "store", "include", "background", "tool_choice")


def is_compaction_request(body: dict[str, Any]) -> bool:
    """``body`` asks for a compaction (its input ends with the trigger)."""
    items = body.get("input")
    if not isinstance(items, list) or not items:
        return False
    last = items[-1]
    return isinstance(last, dict) and last.get("type") == TRIGGER_TYPE


def summarising_request(body: dict[str, Any]) -> dict[str, Any]:
    """The ordinary request that asks the upstream for the summary."""
    items = [
        i for i in body["input"] if not (isinstance(i, dict) and i.get("type") == TRIGGER_TYPE)
    ]
    items.append(
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": SUMMARY_INSTRUCTION}],
        }
    )
    out = {k: v for k, v in body.items() if k not in _NOT_SUMMARISED}
    out["input"] = items
    out["stream"] = False
    if out.get("tools"):
        out["tool_choice"] = "none"
    return out


def summary_of(response: dict[str, Any]) -> str:
    """The text of the assistant messages of a Responses ``response`` ("" if none)."""
    texts: list[str] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
    return "".join(texts).strip()


def carried_summary(sealed: str) -> str:
    """The ``encrypted_content`` that carries a sealed summary."""
    return CARRIED_PREFIX + sealed


def compaction_item(encrypted_content: str) -> dict[str, Any]:
    return {
        "id": "cmp_" + uuid.uuid4().hex,
        "type": ITEM_TYPE,
        "encrypted_content": encrypted_content,
    }


def compaction_response(
    summarised: dict[str, Any], item: dict[str, Any], *, model: str
) -> dict[str, Any]:
    """The summarising answer as the compaction the client asked for: the same id,
    time and usage, its one output item the compaction item."""
    out = dict(summarised)
    out["output"] = [item]
    out["status"] = "completed"
    out["incomplete_details"] = None
    out["model"] = model
    out.setdefault("created_at", int(time.time()))
    return out


def expand_compactions(items: list[Any], open_summary: Callable[[str], str]) -> list[Any] | None:
    """``items`` with every gateway-made compaction item replaced by its summary as
    a user message (None: there was none). ``open_summary`` takes the sealed
    part and raises when it does not open."""
    if not any(_carried(item) is not None for item in items):
        return None
    out: list[Any] = []
    for item in items:
        sealed = _carried(item)
        if sealed is None:
            out.append(item)
            continue
        text = SUMMARY_HEADER + open_summary(sealed)
        out.append(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )
    return out


def _carried(item: object) -> str | None:
    """The sealed summary a gateway-made compaction item carries (None: not one)."""
    if not isinstance(item, dict) or item.get("type") not in (ITEM_TYPE, "compaction_summary"):
        return None
    content = item.get("encrypted_content")
    if isinstance(content, str) and content.startswith(CARRIED_PREFIX):
        return content[len(CARRIED_PREFIX) :]
    return None
