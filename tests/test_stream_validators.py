"""Strict checkers for the client streams the gateway writes, and what they mean.

Each ``check_*`` function reads one client stream's bytes, asserts every shape
rule a client of that format relies on (CONVERSION.md, "Responses and
streams"), and returns a *view*: what a client of that format reconstructs
(text, tool calls, stop reason, usage), or the error it was sent. The
``view_*`` functions give the view a ``ChatResponse`` should produce, so a
test can compare "what the client saw" with "what the upstream said".

These checkers read the wire bytes themselves (no gateway code), and the
tests at the bottom show each rule rejects a broken stream.

``check_unified`` asserts the contract of ``llm_gateway.streaming.events``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from llm_gateway.formats.unified import (
    ChatResponse,
    RedactedThinkingPart,
    StopReason,
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
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    UnifiedEvent,
)

MODEL = "client-model"
CREATED = 1_700_000_000

# --- framing --------------------------------------------------------------------


def frames(raw: bytes) -> list[tuple[str | None, str]]:
    """Split canonical SSE (``[event: x\\n]data: y\\n\\n``) into (event, data) pairs.

    Stricter than a general decoder on purpose: what the gateway writes must
    be this plain shape, one data line per event.
    """
    text = raw.decode("utf-8")
    assert text.endswith("\n\n") or text == "", "stream must end with a complete event"
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        name = None
        if lines[0].startswith("event: "):
            name = lines.pop(0)[len("event: ") :]
        assert len(lines) == 1 and lines[0].startswith("data: "), f"bad event block {block!r}"
        out.append((name, lines[0][len("data: ") :]))
    return out


# --- views ----------------------------------------------------------------------


@dataclass(frozen=True)
class AnthropicView:
    blocks: tuple[tuple[Any, ...], ...] = ()
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: tuple[int, int, int, int] | None = None  # input, output, cache read, cache write
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class ChatView:
    reasoning: str = ""
    content: str = ""
    tool_calls: tuple[tuple[str, str, Any], ...] = ()
    finish_reason: str | None = None
    usage: tuple[int, int, int] | None = None  # prompt, completion, cached
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class CompletionView:
    text: str = ""
    finish_reason: str | None = None
    usage: tuple[int, int, int] | None = None
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class GeminiView:
    thoughts: str = ""
    text: str = ""
    calls: tuple[tuple[str, Any], ...] = ()  # (name, args)
    finish_reason: str | None = None
    usage: tuple[int, int, int] | None = None  # prompt, candidates, thoughts
    error: tuple[str, str] | None = None  # (status name, message)


ANTHROPIC_STOP_REASONS = {r.value for r in StopReason}
FINISH = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.PAUSE_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.REFUSAL: "content_filter",
}


def view_anthropic(resp: ChatResponse) -> AnthropicView:
    blocks: list[tuple[Any, ...]] = []
    for part in resp.parts:
        if isinstance(part, TextPart):
            blocks.append(("text", part.text))
        elif isinstance(part, ThinkingPart):
            blocks.append(("thinking", part.text, part.signature))
        elif isinstance(part, RedactedThinkingPart):
            blocks.append(("redacted_thinking", part.data))
        else:
            assert isinstance(part, ToolUsePart)
            blocks.append(("tool_use", part.id, part.name, part.input.value()))
    u = resp.usage
    return AnthropicView(
        tuple(blocks),
        (resp.stop_reason or StopReason.END_TURN).value,
        resp.stop_sequence,
        (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens),
    )


def _openai_usage(resp: ChatResponse, include_usage: bool) -> tuple[int, int, int] | None:
    if not include_usage:
        return None
    u = resp.usage
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return (prompt, u.output_tokens, u.cache_read_tokens)


def view_chat(resp: ChatResponse, include_usage: bool) -> ChatView:
    return ChatView(
        "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart)),
        "".join(p.text for p in resp.parts if isinstance(p, TextPart)),
        tuple((p.id, p.name, p.input.value()) for p in resp.parts if isinstance(p, ToolUsePart)),
        FINISH[resp.stop_reason or StopReason.END_TURN],
        _openai_usage(resp, include_usage),
    )


def view_completion(resp: ChatResponse, include_usage: bool) -> CompletionView:
    return CompletionView(
        "".join(p.text for p in resp.parts if isinstance(p, TextPart)),
        FINISH[resp.stop_reason or StopReason.END_TURN],
        _openai_usage(resp, include_usage),
    )


GEMINI_FINISH = {StopReason.MAX_TOKENS: "MAX_TOKENS", StopReason.REFUSAL: "SAFETY"}


def view_gemini(resp: ChatResponse) -> GeminiView:
    u = resp.usage
    return GeminiView(
        "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart)),
        "".join(p.text for p in resp.parts if isinstance(p, TextPart)),
        tuple((p.name, p.input.value()) for p in resp.parts if isinstance(p, ToolUsePart)),
        GEMINI_FINISH.get(resp.stop_reason or StopReason.END_TURN, "STOP"),
        (
            u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
            u.output_tokens - u.reasoning_tokens,
            u.reasoning_tokens,
        ),
    )


# --- Anthropic ------------------------------------------------------------------

_DELTA_FOR_BLOCK = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "redacted_thinking": set(),
}


def _anthropic_error(data: dict[str, Any]) -> tuple[str, str]:
    assert set(data) == {"type", "error"}, data
    error = data["error"]
    assert set(error) == {"type", "message"}, error
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    return (error["type"], error["message"])


def check_anthropic(raw: bytes, *, model: str = MODEL) -> AnthropicView:
    events = frames(raw)
    assert events, "empty stream"
    parsed: list[tuple[str, dict[str, Any]]] = []
    for name, data_text in events:
        data = json.loads(data_text)
        assert name is not None and data["type"] == name, f"event name {name} vs {data}"
        parsed.append((name, data))
    if parsed[-1][0] == "error":
        assert all(name != "error" for name, _ in parsed[:-1]), "only one error event"
        error = _anthropic_error(parsed[-1][1])
        if len(parsed) > 1:  # whatever came before must be a valid prefix
            _anthropic_body(parsed[:-1], model, complete=False)
        return AnthropicView(error=error)
    return _anthropic_body(parsed, model, complete=True)


def _anthropic_body(
    parsed: list[tuple[str, dict[str, Any]]], model: str, *, complete: bool
) -> AnthropicView:
    parsed = [(name, data) for name, data in parsed if name != "ping"]
    name, start = parsed[0]
    assert name == "message_start", "stream must open with message_start"
    message = start["message"]
    assert message["id"].startswith("msg_") and len(message["id"]) > 4
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == model
    assert message["content"] == [] and message["stop_reason"] is None
    usage = dict(message["usage"])
    assert all(isinstance(usage[k], int) for k in ("input_tokens", "output_tokens"))
    blocks: list[tuple[Any, ...]] = []
    open_block: dict[str, Any] | None = None
    pieces: list[str] = []
    signature = ""
    stop: dict[str, Any] | None = None
    i = 1
    while i < len(parsed):
        name, data = parsed[i]
        i += 1
        if name == "content_block_start":
            assert stop is None and open_block is None, "a block opened while another is open"
            assert data["index"] == len(blocks), f"block index {data['index']} != {len(blocks)}"
            open_block = data["content_block"]
            kind = open_block["type"]
            assert kind in _DELTA_FOR_BLOCK, kind
            if kind == "text":
                assert open_block == {"type": "text", "text": ""}
            elif kind == "thinking":
                assert open_block["thinking"] == "" and open_block.get("signature", "") == ""
            elif kind == "tool_use":
                assert set(open_block) == {"type", "id", "name", "input"}
                assert open_block["input"] == {} and open_block["id"] and open_block["name"]
            pieces, signature = [], ""
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == len(blocks), "delta outside block"
            delta = data["delta"]
            assert delta["type"] in _DELTA_FOR_BLOCK[open_block["type"]], (delta, open_block)
            if delta["type"] == "text_delta":
                pieces.append(delta["text"])
            elif delta["type"] == "thinking_delta":
                pieces.append(delta["thinking"])
            elif delta["type"] == "input_json_delta":
                pieces.append(delta["partial_json"])
            else:
                signature = delta["signature"]
        elif name == "content_block_stop":
            assert open_block is not None and data == {
                "type": "content_block_stop",
                "index": len(blocks),
            }
            kind, text = open_block["type"], "".join(pieces)
            if kind == "text":
                assert text, "an empty text block would be rejected when sent back"
                blocks.append(("text", text))
            elif kind == "thinking":
                blocks.append(("thinking", text, signature))
            elif kind == "redacted_thinking":
                blocks.append(("redacted_thinking", open_block["data"]))
            else:
                # Clients that parse the concatenated pieces at block stop need real JSON.
                arguments = json.loads(text)
                assert isinstance(arguments, dict)
                blocks.append(("tool_use", open_block["id"], open_block["name"], arguments))
            open_block = None
        elif name == "message_delta":
            assert open_block is None and stop is None, "message_delta inside a block / twice"
            stop = data
            assert stop["delta"]["stop_reason"] in ANTHROPIC_STOP_REASONS
            usage.update({k: v for k, v in stop["usage"].items() if v is not None})
        elif name == "message_stop":
            assert stop is not None and data == {"type": "message_stop"}
            assert i == len(parsed), "nothing may follow message_stop"
            break
        else:
            raise AssertionError(f"unexpected event {name}")
    else:
        assert not complete, "stream ended without message_stop"
        return AnthropicView()
    assert stop is not None
    return AnthropicView(
        tuple(blocks),
        stop["delta"]["stop_reason"],
        stop["delta"]["stop_sequence"],
        (
            usage["input_tokens"],
            usage["output_tokens"],
            usage.get("cache_read_input_tokens", 0),
            usage.get("cache_creation_input_tokens", 0),
        ),
    )


# --- OpenAI family ----------------------------------------------------------------


def _openai_chunks(raw: bytes) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    events = frames(raw)
    assert events, "empty stream"
    assert all(name is None for name, _ in events), "OpenAI streams use unnamed events"
    assert events[-1][1] == "[DONE]", "stream must end with data: [DONE]"
    assert [data for _, data in events].count("[DONE]") == 1, "[DONE] exactly once"
    chunks = [json.loads(data) for _, data in events[:-1]]
    error = None
    for position, chunk in enumerate(chunks):
        if "error" in chunk:
            assert position == len(chunks) - 1, "the error chunk must be last before [DONE]"
            assert set(chunk) == {"error"}
            body = chunk["error"]
            assert isinstance(body["message"], str) and isinstance(body["type"], str)
            assert set(body) == {"message", "type", "param", "code"}
            error = (body["type"], body["message"])
    return (chunks[:-1] if error else chunks), error


def _check_envelopes(
    chunks: list[dict[str, Any]], obj: str, prefix: str, model: str, created: int
) -> None:
    ids = {chunk["id"] for chunk in chunks}
    assert len(ids) <= 1, f"chunk ids differ: {ids}"
    for chunk in chunks:
        assert chunk["id"].startswith(prefix) and len(chunk["id"]) > len(prefix)
        assert chunk["object"] == obj
        assert chunk["created"] == created
        assert chunk["model"] == model


def _usage_tail(
    chunks: list[dict[str, Any]], include_usage: bool, complete: bool
) -> tuple[list[dict[str, Any]], tuple[int, int, int] | None]:
    for chunk in chunks[:-1]:
        assert chunk["choices"], "only the final usage chunk may have empty choices"
        assert "usage" not in chunk, "usage belongs in the usage chunk only"
    if not (complete and include_usage):
        if chunks:
            assert chunks[-1]["choices"] and "usage" not in chunks[-1], "unrequested usage chunk"
        return chunks, None
    last = chunks[-1]
    assert last["choices"] == [], "the usage chunk has empty choices"
    u = last["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    return chunks[:-1], (
        u["prompt_tokens"],
        u["completion_tokens"],
        u["prompt_tokens_details"]["cached_tokens"],
    )


def _finish(chunks: list[dict[str, Any]], complete: bool) -> str | None:
    finishing = [i for i, c in enumerate(chunks) if c["choices"][0]["finish_reason"] is not None]
    if not complete:  # the error may come after the finish chunk, nothing else may
        assert finishing in ([], [len(chunks) - 1]), "at most one finish_reason, last"
        return None
    assert finishing == [len(chunks) - 1], (
        f"exactly one finish_reason, on the last chunk {finishing}"
    )
    reason = chunks[-1]["choices"][0]["finish_reason"]
    assert reason in {"stop", "length", "tool_calls", "content_filter"}, reason
    return str(reason)


def check_chat(
    raw: bytes, *, include_usage: bool, model: str = MODEL, created: int = CREATED
) -> ChatView:
    chunks, error = _openai_chunks(raw)
    _check_envelopes(chunks, "chat.completion.chunk", "chatcmpl-", model, created)
    chunks, usage = _usage_tail(chunks, include_usage, error is None)
    reason = _finish(chunks, error is None)
    reasoning, content = [], []
    calls: list[dict[str, Any]] = []
    for position, chunk in enumerate(chunks):
        assert len(chunk["choices"]) == 1 and chunk["choices"][0]["index"] == 0
        delta = chunk["choices"][0]["delta"]
        if position == 0:
            assert delta.get("role") == "assistant", "the first delta carries the role"
        else:
            assert "role" not in delta, "role only in the first delta"
        assert set(delta) <= {"role", "content", "reasoning_content", "tool_calls"}, delta
        content.append(delta.get("content") or "")
        reasoning.append(delta.get("reasoning_content") or "")
        for call in delta.get("tool_calls", []):
            number = call["index"]
            if number == len(calls):  # a new call: id, type and name, only here
                assert (
                    set(call) == {"index", "id", "type", "function"} and call["type"] == "function"
                )
                assert call["id"] and call["function"]["name"]
                calls.append({"id": call["id"], "name": call["function"]["name"], "args": []})
            else:
                assert number < len(calls), f"tool call index {number} skips ahead"
                assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
            calls[number]["args"].append(call["function"].get("arguments", ""))
    if error is not None:
        return ChatView(error=error)
    tool_calls = []
    for call in calls:
        arguments = json.loads("".join(call["args"]))  # clients json.loads() the arguments
        assert isinstance(arguments, dict)
        tool_calls.append((call["id"], call["name"], arguments))
    return ChatView("".join(reasoning), "".join(content), tuple(tool_calls), reason, usage)


def check_completion(
    raw: bytes, *, include_usage: bool, model: str = MODEL, created: int = CREATED
) -> CompletionView:
    chunks, error = _openai_chunks(raw)
    _check_envelopes(chunks, "text_completion", "cmpl-", model, created)
    chunks, usage = _usage_tail(chunks, include_usage, error is None)
    reason = _finish(chunks, error is None)
    text = []
    for chunk in chunks:
        assert len(chunk["choices"]) == 1
        choice = chunk["choices"][0]
        assert (
            set(choice) == {"text", "index", "logprobs", "finish_reason"} and choice["index"] == 0
        )
        text.append(choice["text"])
    if error is not None:
        return CompletionView(error=error)
    return CompletionView("".join(text), reason, usage)


# --- Gemini ------------------------------------------------------------------------


def check_gemini(raw: bytes, *, model: str = MODEL) -> GeminiView:
    """A ``:streamGenerateContent?alt=sse`` stream: whole GenerateContentResponse
    chunks, one candidate each, ``finishReason`` and usage on the last one only;
    or Google's error object as the last chunk."""
    events = frames(raw)
    assert events, "empty stream"
    assert all(name is None for name, _ in events), "Gemini streams use unnamed events"
    chunks = [json.loads(data) for _, data in events]
    error = None
    if "error" in chunks[-1]:
        assert set(chunks[-1]) == {"error"}
        body = chunks[-1]["error"]
        assert set(body) == {"code", "message", "status"} and isinstance(body["code"], int)
        assert isinstance(body["status"], str) and body["status"].isupper()
        error = (body["status"], body["message"])
        chunks = chunks[:-1]
    thoughts, text, calls = [], [], []
    assert len({c.get("responseId") for c in chunks}) <= 1, "one responseId per stream"
    for position, chunk in enumerate(chunks):
        assert "error" not in chunk, "an error chunk ends the stream"
        assert chunk["modelVersion"] == model
        (candidate,) = chunk["candidates"]
        assert candidate["index"] == 0 and candidate["content"]["role"] == "model"
        last = position == len(chunks) - 1
        assert ("finishReason" in candidate) == (last and error is None), "finishReason last"
        assert ("usageMetadata" in chunk) == ("finishReason" in candidate)
        for part in candidate["content"]["parts"]:
            if "functionCall" in part:
                call = part["functionCall"]
                assert set(call) <= {"name", "args", "id"} and isinstance(call["args"], dict)
                calls.append((call["name"], call["args"]))
            elif part.get("thought"):
                assert set(part) <= {"text", "thought", "thoughtSignature"}
                thoughts.append(part["text"])
            else:
                assert set(part) == {"text"}, part
                text.append(part["text"])
    if error is not None:
        return GeminiView(error=error)
    assert chunks, "a finished stream has a chunk with finishReason"
    u = chunks[-1]["usageMetadata"]
    thought_tokens = u.get("thoughtsTokenCount", 0)
    assert (
        u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"] + thought_tokens
    )
    return GeminiView(
        "".join(thoughts),
        "".join(text),
        tuple(calls),
        chunks[-1]["candidates"][0]["finishReason"],
        (u["promptTokenCount"], u["candidatesTokenCount"], thought_tokens),
    )


# --- the unified contract ----------------------------------------------------------


def check_unified(events: list[UnifiedEvent]) -> None:
    """The event order ``llm_gateway.streaming.events`` promises."""
    assert events, "no events"
    if isinstance(events[-1], StreamError):
        events = events[:-1]
        assert not any(isinstance(e, StreamError) for e in events)
        if not events:
            return
    else:
        assert isinstance(events[-1], MessageStop), events[-1]
        assert not any(isinstance(e, MessageStop) for e in events[:-1])
    assert isinstance(events[0], MessageStart)
    assert not any(isinstance(e, MessageStart) for e in events[1:])
    seen: list[int] = []
    kinds: dict[int, type] = {}
    stopped: set[int] = set()
    finishing = False
    for event in events[1:]:
        if isinstance(
            event,
            (
                TextDelta,
                ThinkingDelta,
                SignatureDelta,
                ToolCallStart,
                ToolArgsDelta,
                RedactedThinking,
                BlockStop,
            ),
        ):
            assert not finishing, f"{event} after the stop reason"
            index = event.index
            assert index not in stopped, f"{event} after its BlockStop"
            if isinstance(event, BlockStop):
                assert index in seen
                stopped.add(index)
                continue
            if index not in seen:
                assert index == len(seen), f"index {index} out of order"
                assert not isinstance(event, ToolArgsDelta)
                seen.append(index)
                kinds[index] = ThinkingDelta if isinstance(event, SignatureDelta) else type(event)
                if kinds[index] is not ToolCallStart:
                    open_prose = [i for i in seen[:-1] if kinds[i] is not ToolCallStart]
                    assert set(open_prose) <= stopped, "text/thinking blocks may not overlap"
            else:
                assert not isinstance(event, (ToolCallStart, RedactedThinking))
            if isinstance(event, (TextDelta, ThinkingDelta)):
                assert event.text, "empty pieces are never emitted"
                assert kinds[index] is type(event)
            if isinstance(event, ToolArgsDelta):
                assert event.partial_json and kinds[index] is ToolCallStart
        elif isinstance(event, MessageDelta) and event.stop_reason is not None:
            assert set(seen) == stopped, "blocks still open at the stop reason"
            finishing = True


# --- the checkers reject what they should -------------------------------------------

GOOD_ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"client-model","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":3,"output_tokens":0}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

GOOD_CHAT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)


def test_good_streams_pass() -> None:
    assert check_anthropic(GOOD_ANTHROPIC) == AnthropicView(
        (("text", "hi"),), "end_turn", None, (3, 2, 0, 0)
    )
    assert check_chat(GOOD_CHAT, include_usage=True) == ChatView(
        "", "", (("c1", "f", {}),), "tool_calls", (3, 2, 0)
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"index":0,"content_block"', b'"index":1,"content_block"'),  # index gap
        (b'"model":"client-model"', b'"model":"upstream-model"'),
        (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', b""),  # no terminal
        (b'"text_delta","text":"hi"', b'"text_delta","text":""'),  # empty text block
        (b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n', b""),
        (b'"id":"msg_1"', b'"id":"chatcmpl-1"'),
        (b'"stop_reason":"end_turn"', b'"stop_reason":"stop"'),
    ],
)
def test_anthropic_checker_rejects(old: bytes, new: bytes) -> None:
    broken = GOOD_ANTHROPIC.replace(old, new, 1)
    assert broken != GOOD_ANTHROPIC
    with pytest.raises(AssertionError):
        check_anthropic(broken)


@pytest.mark.parametrize(
    ("old", "new", "include_usage"),
    [
        (
            b'"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{},',
            b'"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{},',
            True,
        ),
        (
            b'"created":1700000000,"model":"client-model","choices":[]',
            b'"created":1700000001,"model":"client-model","choices":[]',
            True,
        ),
        (b'"role":"assistant",', b"", True),
        (b'"index":0,"id":"c1"', b'"index":1,"id":"c1"', True),
        (
            b'{"index":0,"function":{"arguments":"{}"}}',
            b'{"index":0,"id":"c1","function":{"arguments":"{}"}}',
            True,
        ),
        (b'"arguments":"{}"', b'"arguments":""', True),
        (b"data: [DONE]\n\n", b"", True),
        (b"data: [DONE]\n\n", b"data: [DONE]\n\ndata: [DONE]\n\n", True),
        (
            b'"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{}',
            b'"finish_reason":"stop"}]}\n\ndata: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"client-model","choices":[{"index":0,"delta":{}',
            True,
        ),
        (b"", b"", False),  # a usage chunk nobody asked for
    ],
)
def test_chat_checker_rejects(old: bytes, new: bytes, include_usage: bool) -> None:
    broken = GOOD_CHAT.replace(old, new, 1) if old else GOOD_CHAT
    assert broken != GOOD_CHAT or not include_usage
    with pytest.raises((AssertionError, ValueError)):  # ValueError: arguments not JSON
        check_chat(broken, include_usage=include_usage)


def test_unified_checker_rejects_overlapping_text_blocks() -> None:
    with pytest.raises(AssertionError):
        check_unified(
            [MessageStart(None, None), TextDelta(0, "x"), ThinkingDelta(1, "y"), BlockStop(0)]
            + [BlockStop(1), MessageStop()]
        )
    check_unified(  # tool calls may stay open across other blocks
        [MessageStart(None, None), ToolCallStart(0, "c", "f"), TextDelta(1, "y"), BlockStop(1)]
        + [ToolArgsDelta(0, "{}"), BlockStop(0), MessageStop()]
    )


def test_unified_checker_rejects_out_of_order_indices() -> None:
    with pytest.raises(AssertionError):
        check_unified([MessageStart(None, None), TextDelta(1, "x"), BlockStop(1), MessageStop()])
    with pytest.raises(AssertionError):
        check_unified(
            [
                MessageStart(None, None),
                TextDelta(0, "x"),
                BlockStop(0),
                TextDelta(0, "y"),
                MessageStop(),
            ]
        )
    check_unified([MessageStart(None, None), TextDelta(0, "x"), BlockStop(0), MessageStop()])


# --- OpenAI Responses -----------------------------------------------------------------


@dataclass(frozen=True)
class ResponsesView:
    #: ("message", text) / ("reasoning", summary, encrypted) / ("function_call", call_id,
    #: name, arguments) / ("custom_tool_call", call_id, name, input), in output order
    items: tuple[tuple[Any, ...], ...] = ()
    status: str | None = None
    incomplete: str | None = None
    usage: tuple[int, int, int, int] | None = None  # input, output, cached, reasoning
    error: tuple[str, str] | None = None  # (code, message)

    @property
    def text(self) -> str:
        return "".join(item[1] for item in self.items if item[0] == "message")


_RESPONSES_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def view_responses(resp: ChatResponse) -> ResponsesView:
    items: list[tuple[Any, ...]] = []
    for part in resp.parts:
        if isinstance(part, TextPart):
            items.append(("message", part.text))
        elif isinstance(part, ThinkingPart):
            encrypted = "llmgw-thinking:" + part.signature if part.signature else None
            items.append(("reasoning", part.text, encrypted))
        elif isinstance(part, RedactedThinkingPart):
            items.append(("reasoning", "", "llmgw-redacted:" + part.data))
        else:
            assert isinstance(part, ToolUsePart)
            items.append(("function_call", part.id, part.name, part.input.value()))
    incomplete = {StopReason.MAX_TOKENS: "max_output_tokens", StopReason.REFUSAL: "content_filter"}
    reason = incomplete.get(resp.stop_reason) if resp.stop_reason is not None else None
    u = resp.usage
    return ResponsesView(
        tuple(items),
        "incomplete" if reason else "completed",
        reason,
        (
            u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.reasoning_tokens,
        ),
    )


def _item_view(item: dict[str, Any]) -> tuple[Any, ...]:
    kind = item["type"]
    if kind == "message":
        assert item["role"] == "assistant" and item["status"] == "completed"
        return ("message", "".join(c["text"] for c in item["content"]))
    if kind == "reasoning":
        summary = "".join(s["text"] for s in item["summary"])
        return ("reasoning", summary, item.get("encrypted_content"))
    if kind == "compaction":
        return ("compaction", item["encrypted_content"])
    assert item["status"] == "completed"
    if kind == "function_call":
        return ("function_call", item["call_id"], item["name"], json.loads(item["arguments"]))
    assert kind == "custom_tool_call", kind
    return ("custom_tool_call", item["call_id"], item["name"], item["input"])


class _ResponsesChecker:
    """The Responses event grammar, event by event (see ``check_responses``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.response_id: str | None = None
        self.added = 0  # output items opened so far
        self.item: dict[str, Any] | None = None  # the open item, as added
        self.done_items: list[dict[str, Any]] = []
        self.parts: list[str] = []  # texts of the open item's parts/summaries, when done
        self.part_open: int | None = None
        self.piece = ""  # deltas of the open part / arguments
        self.piece_done: str | None = None

    def lifecycle(self, kind: str, data: dict[str, Any], position: int) -> None:
        response = data["response"]
        assert response["object"] == "response" and response["model"] == self.model
        assert response["id"].startswith("resp_")
        if self.response_id is None:
            self.response_id = response["id"]
        assert response["id"] == self.response_id, "one id for the whole stream"
        if kind in ("response.created", "response.in_progress"):
            expected = 0 if kind == "response.created" else 1
            assert position == expected, f"{kind} at {position}"
            assert response["status"] == "in_progress"
            return
        if kind == "response.failed":
            assert response["status"] == "failed" and response["error"]["message"]
            return
        assert self.item is None, "an item is still open at the end"
        status = "completed" if kind == "response.completed" else "incomplete"
        assert response["status"] == status
        assert response["output"] == self.done_items, "the final output is the items done"
        assert isinstance(response["usage"]["input_tokens"], int)

    def item_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "response.output_item.added":
            assert self.item is None, "item opened before the previous one was done"
            assert data["output_index"] == self.added, "output_index out of order"
            self.item = data["item"]
            self.added += 1
            self.parts = []
            self.piece, self.piece_done = "", None
            return
        item = self.item
        assert item is not None, f"{kind} outside an output item"
        assert data["output_index"] == self.added - 1
        if kind != "response.output_item.done":
            assert data["item_id"] == item["id"]
        if kind == "response.output_item.done":
            assert self.part_open is None, "item done with a part still open"
            done = data["item"]
            assert done["id"] == item["id"] and done["type"] == item["type"]
            if done["type"] == "message":
                assert [c["text"] for c in done["content"]] == self.parts
            elif done["type"] == "reasoning":
                assert [s["text"] for s in done["summary"]] == self.parts
            elif done["type"] == "function_call":
                assert self.piece_done == self.piece == done["arguments"]
                assert (done["call_id"], done["name"]) == (item["call_id"], item["name"])
            elif done["type"] == "compaction":  # whole when added: no deltas
                assert done == item and done["encrypted_content"]
            else:
                assert self.piece_done == self.piece == done["input"]
            self.done_items.append(done)
            self.item = None
        elif kind in ("response.content_part.added", "response.reasoning_summary_part.added"):
            key = "content_index" if "content" in kind else "summary_index"
            assert self.part_open is None and data[key] == len(self.parts)
            self.part_open, self.piece, self.piece_done = data[key], "", None
        elif kind in ("response.output_text.delta", "response.reasoning_summary_text.delta"):
            key = "content_index" if "output_text" in kind else "summary_index"
            assert self.part_open == data[key], "delta outside its part"
            assert self.piece_done is None and data["delta"]
            self.piece += data["delta"]
        elif kind in ("response.output_text.done", "response.reasoning_summary_text.done"):
            assert self.part_open is not None and data["text"] == self.piece
            self.piece_done = self.piece
        elif kind in ("response.content_part.done", "response.reasoning_summary_part.done"):
            assert self.piece_done is not None, "part done before its text was"
            assert data["part"]["text"] == self.piece_done
            self.parts.append(self.piece_done)
            self.part_open = None
        elif kind in (
            "response.function_call_arguments.delta",
            "response.custom_tool_call_input.delta",
        ):
            assert self.piece_done is None
            self.piece += data["delta"]
        elif kind == "response.function_call_arguments.done":
            assert item["type"] == "function_call"
            self.piece_done = data["arguments"]
        elif kind == "response.custom_tool_call_input.done":
            assert item["type"] == "custom_tool_call"
            self.piece_done = data["input"]
        else:
            raise AssertionError(f"unexpected event {kind}")


def check_responses(raw: bytes, *, model: str = MODEL) -> ResponsesView:
    """A Responses stream, strictly: every event named as its ``type``,
    ``sequence_number`` counting from 0, ``response.created`` then
    ``response.in_progress``, output items opened in ``output_index`` order and
    each done before the next opens, parts added before their deltas and done
    after them, exactly one terminal event last (or an ``error`` event) whose
    response holds the items as they were done."""
    events = frames(raw)
    assert events, "empty stream"
    checker = _ResponsesChecker(model)
    view: ResponsesView | None = None
    for position, (name, text) in enumerate(events):
        assert view is None, "nothing may follow the terminal event"
        data = json.loads(text)
        kind = data["type"]
        assert name == kind, f"event name {name!r} is not its type {kind!r}"
        assert data["sequence_number"] == position or kind == "error"
        if kind == "error":
            assert position == len(events) - 1
            view = ResponsesView(error=(data["code"], data["message"]))
        elif kind.startswith("response.") and "response" in data:
            checker.lifecycle(kind, data, position)
            if kind in _RESPONSES_TERMINAL:
                view = _terminal_view(kind, data["response"], checker)
        else:
            assert position > 1, "items before response.in_progress"
            checker.item_event(kind, data)
    assert view is not None, "no terminal event"
    return view


def _terminal_view(
    kind: str, response: dict[str, Any], checker: _ResponsesChecker
) -> ResponsesView:
    items = tuple(_item_view(item) for item in checker.done_items)
    if kind == "response.failed":
        error = response["error"]
        return ResponsesView(items, "failed", error=(error["code"], error["message"]))
    usage = response["usage"]
    details = response["incomplete_details"]
    return ResponsesView(
        items,
        response["status"],
        details["reason"] if details else None,
        (
            usage["input_tokens"],
            usage["output_tokens"],
            usage["input_tokens_details"]["cached_tokens"],
            usage["output_tokens_details"]["reasoning_tokens"],
        ),
    )


GOOD_RESPONSES = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","model":"client-model","status":"in_progress","output":[]}}\n\n'
    b'event: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","model":"client-model","status":"in_progress","output":[]}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n'
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":""}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}\n\n'
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi"}\n\n'
    b'event: response.content_part.done\ndata: {"type":"response.content_part.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi"}}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi"}]}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":8,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","call_id":"c1","name":"f","arguments":""}}\n\n'
    b'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_1","output_index":1,"delta":"{}"}\n\n'
    b'event: response.function_call_arguments.done\ndata: {"type":"response.function_call_arguments.done","sequence_number":10,"item_id":"fc_1","output_index":1,"arguments":"{}"}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":11,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"completed","call_id":"c1","name":"f","arguments":"{}"}}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":12,"response":{"id":"resp_1","object":"response","model":"client-model","status":"completed","incomplete_details":null,"output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi"}]},{"id":"fc_1","type":"function_call","status":"completed","call_id":"c1","name":"f","arguments":"{}"}],"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":5}}}\n\n'
)


def test_good_responses_stream_passes() -> None:
    view = check_responses(GOOD_RESPONSES)
    assert view.items == (("message", "Hi"), ("function_call", "c1", "f", {}))
    assert view.status == "completed" and view.usage == (3, 2, 0, 0)


def _renumber(raw: bytes) -> bytes:
    out = []
    for number, block in enumerate(raw.split(b"\n\n")[:-1]):
        name, data = block.split(b"\n")
        body = json.loads(data[len(b"data: ") :])
        body["sequence_number"] = number
        out.append(name + b"\ndata: " + json.dumps(body).encode() + b"\n\n")
    return b"".join(out)


def _events(raw: bytes) -> list[bytes]:
    return [block + b"\n\n" for block in raw.split(b"\n\n")[:-1]]


def _swap(raw: bytes, a: int, b: int) -> bytes:
    events = _events(raw)
    events[a], events[b] = events[b], events[a]
    return _renumber(b"".join(events))


def _drop(raw: bytes, index: int) -> bytes:
    events = _events(raw)
    del events[index]
    return _renumber(b"".join(events))


@pytest.mark.parametrize(
    "broken",
    [
        GOOD_RESPONSES.replace(b'"sequence_number":4', b'"sequence_number":5'),  # numbering
        _swap(GOOD_RESPONSES, 0, 1),  # in_progress before created
        _drop(GOOD_RESPONSES, 3),  # delta before its part was added
        _drop(GOOD_RESPONSES, 7),  # item 1 opened before item 0 was done
        _drop(GOOD_RESPONSES, 12),  # no terminal event
        _renumber(GOOD_RESPONSES + _events(GOOD_RESPONSES)[-1]),  # two terminal events
        GOOD_RESPONSES.replace(
            b'"arguments":"{}"}}\n\nevent: response.completed',
            b'"arguments":"{ }"}}\n\nevent: response.completed',
        ),
        GOOD_RESPONSES.replace(
            b'"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress"',
            b'"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress"',
        ),
        GOOD_RESPONSES.replace(
            b"event: response.output_text.delta", b"event: response.output_text.deltas"
        ),
    ],
)
def test_responses_checker_rejects(broken: bytes) -> None:
    with pytest.raises((AssertionError, KeyError)):
        check_responses(broken)


# --- running a stream through the gateway's pieces ------------------------------------


@dataclass
class Piped:
    unified: list[UnifiedEvent]
    writes: list[bytes]  # what each renderer call returned

    @property
    def output(self) -> bytes:
        return b"".join(self.writes)


def pipe(
    chunks: list[bytes] | bytes,
    upstream: str,
    client: str,
    *,
    include_usage: bool = False,
    model: str = MODEL,
    created: int = CREATED,
) -> Piped:
    """Upstream bytes -> SSEDecoder -> parser -> renderer, as the server drives them."""
    from llm_gateway.streaming.registry import STREAM_FORMATS
    from llm_gateway.streaming.sse import SSEDecoder

    if isinstance(chunks, bytes):
        chunks = [chunks]
    decoder = SSEDecoder()
    parser = STREAM_FORMATS[upstream].parser_factory()
    renderer = STREAM_FORMATS[client].renderer_factory(
        model=model, include_usage=include_usage, created=created
    )
    result = Piped([], [])

    def forward(events: list[UnifiedEvent]) -> None:
        for event in events:
            result.unified.append(event)
            result.writes.append(renderer.feed(event))

    for chunk in chunks:
        for sse in decoder.feed(chunk):
            forward(parser.feed(sse))
    for sse in decoder.close():
        forward(parser.feed(sse))
    forward(parser.finish())
    result.writes.append(renderer.finish())
    for write in result.writes:
        assert write == b"" or write.endswith(b"\n\n"), "every write is whole events"
    return result


def check_client(piped: Piped, client: str, *, include_usage: bool) -> Any:
    """The strict checker for ``client``'s format; returns its view."""
    if client == "anthropic-messages":
        return check_anthropic(piped.output)
    if client == "openai-chat":
        return check_chat(piped.output, include_usage=include_usage)
    if client == "gemini-generate-content":
        return check_gemini(piped.output)
    if client == "openai-responses":
        return check_responses(piped.output)
    return check_completion(piped.output, include_usage=include_usage)


def expected_view(resp: ChatResponse, client: str, *, include_usage: bool) -> Any:
    if client == "anthropic-messages":
        return view_anthropic(resp)
    if client == "openai-chat":
        return view_chat(resp, include_usage)
    if client == "gemini-generate-content":
        return view_gemini(resp)
    if client == "openai-responses":
        return view_responses(resp)
    return view_completion(resp, include_usage)


FORMATS = (
    "openai-chat",
    "openai-completions",
    "anthropic-messages",
    "gemini-generate-content",
    "openai-responses",
)
