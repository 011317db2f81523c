"""Prompt-caching markers (``cache_control``) as they appear in JSON.

Theory of operation: Anthropic puts ``{"type": "ephemeral", "ttl": "5m"}`` on
system blocks, message blocks and tools. Some OpenAI-format clients (written
for gateways that forward to Anthropic) put the same object on their content
parts, so both codecs read it with ``read_cache_control`` and the Anthropic
codec writes it back with ``cache_control_json``.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.unified import CacheControl

__all__ = ["cache_control_json", "read_cache_control"]


def read_cache_control(block: FieldReader) -> CacheControl | None:
    """The block's ``cache_control`` marker, if any."""
    marker = block.opt_obj("cache_control")
    if marker is None:
        return None
    return CacheControl(type=marker.req_str("type"), ttl=marker.opt_str("ttl"))


def cache_control_json(marker: CacheControl) -> dict[str, Any]:
    out: dict[str, Any] = {"type": marker.type}
    if marker.ttl is not None:
        out["ttl"] = marker.ttl
    return out
