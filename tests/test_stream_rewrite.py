"""Same-format passthrough: only the model name changes (and, when asked, the usage
chunk the gateway requested for itself disappears)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.formats.unified import Usage
from llm_gateway.streaming.registry import STREAM_FORMATS
from llm_gateway.streaming.rewrite import AnthropicModelRewriter, OpenAIModelRewriter
from llm_gateway.streaming.sse import SSEDecoder, SSEEvent

STREAMS = Path(__file__).parent / "fixtures" / "streams"


def events_of(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


def rewrite(rewriter: Any, raw: bytes) -> bytes:
    return b"".join(rewriter.feed(event) for event in events_of(raw)) + rewriter.finish()


def meaning(event: SSEEvent) -> tuple[str | None, Any]:
    try:
        return event.event, json.loads(event.data)
    except ValueError:
        return event.event, event.data


@pytest.mark.parametrize("name", ["openai_chat_text", "openai_chat_tools", "openai_completions"])
def test_openai_every_chunk_gets_the_client_model_and_nothing_else_changes(name: str) -> None:
    raw = (STREAMS / f"{name}.sse").read_bytes()
    out = rewrite(OpenAIModelRewriter(model="alias"), raw)
    before, after = events_of(raw), events_of(out)
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        old_event, old_data = meaning(old)
        new_event, new_data = meaning(new)
        assert new_event == old_event
        if isinstance(old_data, dict):
            assert new_data.pop("model") == "alias"
            old_data.pop("model")
        assert new_data == old_data  # unknown fields (system_fingerprint, ...) intact


def test_openai_unknown_fields_and_non_json_survive() -> None:
    raw = (
        b'data: {"id":"c","model":"real","x_vendor":{"a":[1,2]},"choices":[]}\n\n'
        b": keep-alive comment\n\n"
        b"data: not json\n\n"
        b"data: [DONE]\n\n"
    )
    assert rewrite(OpenAIModelRewriter(model="alias"), raw) == (
        b'data: {"id":"c","model":"alias","x_vendor":{"a":[1,2]},"choices":[]}\n\n'
        b"data: not json\n\n"
        b"data: [DONE]\n\n"
    )


def test_openai_chunks_already_naming_the_client_model_pass_byte_for_byte() -> None:
    raw = b'data: {"id": "c",  "model": "same", "choices": []}\n\ndata: [DONE]\n\n'
    assert rewrite(OpenAIModelRewriter(model="same"), raw) == raw


def test_openai_strip_usage_removes_what_the_gateway_added() -> None:
    raw = (STREAMS / "openai_chat_text.sse").read_bytes()
    rewriter = OpenAIModelRewriter(model="alias", strip_usage=True)
    out = rewrite(rewriter, raw)
    chunks = [json.loads(e.data) for e in events_of(out) if e.data != "[DONE]"]
    assert all(chunk["choices"] for chunk in chunks), "the usage chunk is gone"
    assert all("usage" not in chunk for chunk in chunks), "so is every usage: null"
    assert len(chunks) == 4 and out.endswith(b"data: [DONE]\n\n")
    # The gateway still learns the usage for its own accounting.
    assert rewriter.usage == Usage(input_tokens=93, output_tokens=46, cache_read_tokens=1024)


def test_openai_usage_kept_when_the_client_asked() -> None:
    raw = (STREAMS / "openai_chat_text.sse").read_bytes()
    out = rewrite(OpenAIModelRewriter(model="alias"), raw)
    last = json.loads(events_of(out)[-2].data)
    assert last["choices"] == [] and last["usage"]["prompt_tokens"] == 1117


def test_anthropic_only_message_start_changes() -> None:
    raw = (STREAMS / "anthropic_tool_use.sse").read_bytes()
    rewriter = AnthropicModelRewriter(model="alias")
    out = rewrite(rewriter, raw)
    before, after = events_of(raw), events_of(out)
    assert [e.event for e in after] == [e.event for e in before]
    start = json.loads(after[0].data)
    assert start["message"]["model"] == "alias"
    start["message"]["model"] = "claude-sonnet-4-5"
    assert start == json.loads(before[0].data)
    assert [e.data for e in after[1:]] == [e.data for e in before[1:]]  # untouched text
    assert rewriter.usage == Usage(input_tokens=472, output_tokens=89)


def test_anthropic_unknown_events_pass_through() -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"real","usage":{"input_tokens":1}}}\n\n'
        b'event: brand_new_event\ndata: {"type":"brand_new_event","payload":[1]}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}\n\n'
    )
    out = rewrite(AnthropicModelRewriter(model="alias"), raw)
    assert out == raw.replace(b'"model":"real"', b'"model":"alias"')


def test_registry_rewriters_are_per_format() -> None:
    openai = STREAM_FORMATS["openai-chat"].rewriter_factory(model="a", strip_usage=True)
    anthropic = STREAM_FORMATS["anthropic-messages"].rewriter_factory(model="a", strip_usage=True)
    assert isinstance(openai, OpenAIModelRewriter) and isinstance(anthropic, AnthropicModelRewriter)
    assert openai.usage is None and anthropic.usage is None
