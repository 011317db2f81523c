"""Property tests: any legal upstream stream, cut anywhere, converts faithfully.

For every (upstream format, client format) pair, hypothesis builds a message
(text, thinking, several tool calls with arguments split anywhere, usage
present, late, null or absent), writes it as that upstream would stream it,
cuts the bytes at arbitrary positions and runs them through SSEDecoder ->
parser -> renderer. The client stream must pass the strict checker of its
format, and mean to its client exactly what the message means (as far as the
format can say it). The upstream's unified events must accumulate to the
message itself. The stream builders below are written from the providers'
documented stream shapes, independently of the gateway's renderers.

Also: unified streams whose blocks interleave (the Anthropic renderer must
serialise them), upstream errors injected between any two events, and
upstream streams cut off at any byte.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.formats.unified import (
    ChatResponse,
    JSONValue,
    Part,
    RedactedThinkingPart,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)
from llm_gateway.streaming.accumulate import StreamFailed, accumulate
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
from llm_gateway.streaming.registry import STREAM_FORMATS

try:
    from test_stream_validators import (
        CREATED,
        FORMATS,
        MODEL,
        check_client,
        check_unified,
        expected_view,
        pipe,
    )
except ImportError:  # tests collected as a package
    from tests.test_stream_validators import (
        CREATED,
        FORMATS,
        MODEL,
        check_client,
        check_unified,
        expected_view,
        pipe,
    )

# Derandomized: the same examples on every run (the suite must be deterministic);
# raise max_examples locally to explore further.
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=16)
NAMES = st.sampled_from(["get_weather", "search", "run_python", "f"])
SCALARS = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=6)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=5,
)
TOOL_INPUTS = st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3)
COUNTS = st.integers(0, 5000)


def cut(text: str, points: list[int]) -> list[str]:
    """``text`` split at ``points`` (positions taken modulo its length), no empty piece."""
    marks = sorted({p % len(text) for p in points} - {0}) if text else []
    return (
        [text[a:b] for a, b in zip([0, *marks], [*marks, len(text)], strict=True)] if text else []
    )


def pieces(draw: st.DrawFn, text: str) -> list[str]:
    return cut(text, draw(st.lists(st.integers(0, 10**6), max_size=4)))


def dumps(draw: st.DrawFn, value: object) -> str:
    """JSON as different servers write it: compact or spaced, ASCII-escaped or not."""
    spaced = draw(st.booleans())
    return json.dumps(
        value,
        separators=(", ", ": ") if spaced else (",", ":"),
        ensure_ascii=draw(st.booleans()),
    )


# --- Anthropic upstream -----------------------------------------------------------

ANTHROPIC_STOPS = [r.value for r in StopReason]


@st.composite
def anthropic_upstream(draw: st.DrawFn) -> tuple[ChatResponse, bytes]:
    kinds = draw(
        st.lists(
            st.sampled_from(["text", "thinking", "tool", "redacted", "empty_text", "server_tool"]),
            max_size=6,
        )
    )
    events: list[tuple[str, dict[str, Any]]] = []
    parts: list[Part] = []
    usage = Usage(
        input_tokens=draw(COUNTS),
        output_tokens=draw(COUNTS),
        cache_read_tokens=draw(COUNTS),
        cache_write_tokens=draw(COUNTS),
    )
    events.append(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01Upstream",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-upstream",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "cache_creation_input_tokens": usage.cache_write_tokens,
                        "cache_read_input_tokens": usage.cache_read_tokens,
                        "output_tokens": 1,
                    },
                },
            },
        )
    )

    def delta(index: int, body: dict[str, Any]) -> None:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": body})
        )

    for index, kind in enumerate(kinds):
        if kind in ("text", "empty_text"):
            block: dict[str, Any] = {"type": "text", "text": ""}
        elif kind == "thinking":
            block = {"type": "thinking", "thinking": ""}
        elif kind == "tool":
            tool_id, name = f"toolu_{index:02d}", draw(NAMES)
            block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        elif kind == "redacted":
            data = draw(st.text("abcdefXYZ0123456789+/=", min_size=1, max_size=20))
            block = {"type": "redacted_thinking", "data": data}
        else:
            block = {
                "type": "server_tool_use",
                "id": f"srvtoolu_{index}",
                "name": "web_search",
                "input": {},
            }
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        if kind == "text":
            text = draw(TEXT)
            for piece in pieces(draw, text):
                delta(index, {"type": "text_delta", "text": piece})
            parts.append(TextPart(text))
        elif kind == "thinking":
            text = draw(TEXT)
            signature = draw(st.sampled_from(["", "EqQBCgIYAhIM1gbc", "Sig+/=="]))
            for piece in pieces(draw, text):
                delta(index, {"type": "thinking_delta", "thinking": piece})
            if signature:
                delta(index, {"type": "signature_delta", "signature": signature})
            parts.append(ThinkingPart(text, signature))
        elif kind == "tool":
            arguments = draw(TOOL_INPUTS)
            if draw(st.booleans()):
                delta(index, {"type": "input_json_delta", "partial_json": ""})
            if arguments or draw(st.booleans()):
                for piece in pieces(draw, dumps(draw, arguments)):
                    delta(index, {"type": "input_json_delta", "partial_json": piece})
            parts.append(ToolUsePart(block["id"], block["name"], JSONValue.of(arguments)))
        elif kind == "redacted":
            parts.append(RedactedThinkingPart(block["data"]))
        elif kind == "server_tool":
            delta(index, {"type": "input_json_delta", "partial_json": '{"query": "x"}'})
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = draw(st.sampled_from(ANTHROPIC_STOPS))
    sequence = "STOP" if stop == "stop_sequence" else None
    final_usage: dict[str, Any] = {"output_tokens": usage.output_tokens}
    style = draw(st.sampled_from(["output_only", "all", "nulls"]))
    if style == "all":
        final_usage.update(
            input_tokens=usage.input_tokens,
            cache_read_input_tokens=usage.cache_read_tokens,
            cache_creation_input_tokens=usage.cache_write_tokens,
        )
    elif style == "nulls":
        final_usage.update(cache_read_input_tokens=None, cache_creation_input_tokens=None)
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": sequence},
                "usage": final_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    for _ in range(draw(st.integers(0, 3))):  # pings may appear anywhere after message_start
        events.insert(draw(st.integers(1, len(events) - 1)), ("ping", {"type": "ping"}))
    raw = "".join(f"event: {name}\ndata: {dumps(draw, data)}\n\n" for name, data in events)
    truth = ChatResponse(
        id="msg_01Upstream",
        model="claude-upstream",
        parts=tuple(parts),
        stop_reason=StopReason(stop),
        stop_sequence=sequence,
        usage=usage,
    )
    return truth, raw.encode()


# --- OpenAI upstreams --------------------------------------------------------------

FINISHES = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "content_filter": StopReason.REFUSAL,
}


def openai_usage(draw: st.DrawFn) -> tuple[dict[str, Any], Usage]:
    prompt, completion = draw(COUNTS), draw(COUNTS)
    cached, reasoning = draw(st.integers(0, prompt)), draw(st.integers(0, completion))
    raw = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    return raw, Usage(
        input_tokens=prompt - cached,
        output_tokens=completion,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def interleave(
    draw: st.DrawFn, sequences: list[list[Any]], exclusive: frozenset[int] = frozenset()
) -> list[Any]:
    """Merge sequences keeping each one's order, each starting after the previous one
    started. Sequences in ``exclusive`` never overlap one another."""
    merged: list[Any] = []
    positions = [0] * len(sequences)
    while True:
        started = next((i for i, p in enumerate(positions) if p == 0), len(sequences))
        ready = [
            i for i in range(min(started + 1, len(sequences))) if positions[i] < len(sequences[i])
        ]
        busy = [i for i in exclusive if 0 < positions[i] < len(sequences[i])]
        if busy:  # an exclusive sequence is under way: no other exclusive one may start
            ready = [i for i in ready if i not in exclusive or i in busy]
        if not ready:
            return merged
        pick = ready[draw(st.integers(0, len(ready) - 1))]
        merged.append(sequences[pick][positions[pick]])
        positions[pick] += 1


@st.composite
def openai_chat_upstream(draw: st.DrawFn) -> tuple[ChatResponse, bytes]:
    reasoning = draw(st.none() | TEXT)
    content = draw(st.none() | TEXT)
    tools = [(f"call_{n}", draw(NAMES), draw(TOOL_INPUTS)) for n in range(draw(st.integers(0, 3)))]
    tool_mode = draw(st.sampled_from(["sequential", "interleaved", "no_index", "whole", "index0"]))
    usage_mode = draw(st.sampled_from(["absent", "late", "null_then_late", "null", "in_finish"]))
    finish = draw(st.sampled_from(sorted(FINISHES)))
    raw_usage, usage = openai_usage(draw)

    def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-Upstream",
            "object": "chat.completion.chunk",
            "created": 1720000000,
            "model": "gpt-upstream",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if usage_mode in ("null", "null_then_late"):
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": p}) for p in pieces(draw, reasoning or "")]
    chunks += [chunk({"content": p}) for p in pieces(draw, content or "")]
    calls: list[list[dict[str, Any]]] = []
    for number, (call_id, name, arguments) in enumerate(tools):
        text = dumps(draw, arguments) if arguments or draw(st.booleans()) else ""
        head: dict[str, Any] = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        if tool_mode == "whole":
            head["index"] = number
            head["function"]["arguments"] = text
            calls.append([head])
            continue
        tail = [{"function": {"arguments": p}} for p in pieces(draw, text)]
        if tool_mode != "no_index":
            head["index"] = 0 if tool_mode == "index0" else number
            for entry in tail:
                entry["index"] = head["index"]
        calls.append([head, *tail])
    if tool_mode == "whole":
        if calls:
            chunks.append(chunk({"tool_calls": [call[0] for call in calls]}))
    elif tool_mode == "interleaved":
        chunks += [chunk({"tool_calls": [entry]}) for entry in interleave(draw, calls)]
    else:
        chunks += [chunk({"tool_calls": [entry]}) for call in calls for entry in call]
    last = chunk({}, finish)
    if usage_mode == "in_finish":
        last["usage"] = raw_usage
    chunks.append(last)
    if usage_mode in ("late", "null_then_late"):
        late = chunk(None)
        late["usage"] = raw_usage
        chunks.append(late)
    raw = "".join(f"data: {dumps(draw, c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    parts: list[Part] = []
    if reasoning:
        parts.append(ThinkingPart(reasoning))
    if content:
        parts.append(TextPart(content))
    parts += [ToolUsePart(i, n, JSONValue.of(a)) for i, n, a in tools]
    truth = ChatResponse(
        id="chatcmpl-Upstream",
        model="gpt-upstream",
        parts=tuple(parts),
        stop_reason=FINISHES[finish],
        usage=usage if usage_mode in ("late", "null_then_late", "in_finish") else Usage(),
    )
    return truth, raw.encode()


@st.composite
def openai_completions_upstream(draw: st.DrawFn) -> tuple[ChatResponse, bytes]:
    text = draw(st.none() | TEXT)
    usage_mode = draw(st.sampled_from(["absent", "late", "in_finish"]))
    finish = draw(st.sampled_from(["stop", "length"]))
    raw_usage, usage = openai_usage(draw)

    def chunk(piece: str | None, finish_reason: str | None = None) -> dict[str, Any]:
        choices = (
            []
            if piece is None
            else [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        )
        return {
            "id": "cmpl-Upstream",
            "object": "text_completion",
            "created": 1720000000,
            "model": "instruct-upstream",
            "choices": choices,
        }

    chunks = [chunk(p) for p in pieces(draw, text or "")]
    chunks.append(chunk("", finish))
    if usage_mode == "in_finish":
        chunks[-1]["usage"] = raw_usage
    elif usage_mode == "late":
        chunks.append(chunk(None))
        chunks[-1]["usage"] = raw_usage
    raw = "".join(f"data: {dumps(draw, c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    truth = ChatResponse(
        id="cmpl-Upstream",
        model="instruct-upstream",
        parts=(TextPart(text),) if text else (),
        stop_reason=FINISHES[finish],
        usage=usage if usage_mode != "absent" else Usage(),
    )
    return truth, raw.encode()


# --- Gemini upstream ---------------------------------------------------------------

GEMINI_FINISHES = ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL", "OTHER"]
GEMINI_STOPS = {"MAX_TOKENS": StopReason.MAX_TOKENS, "SAFETY": StopReason.REFUSAL}
GEMINI_STOPS["RECITATION"] = StopReason.REFUSAL


@st.composite
def gemini_upstream(draw: st.DrawFn) -> tuple[ChatResponse, bytes]:
    """``:streamGenerateContent?alt=sse``: text and thought pieces, whole function
    calls (the first signed, ids or not), parts grouped into chunks anyhow, the
    finish reason and usage on the last chunk (usage also earlier, or never)."""
    from llm_gateway.formats.gemini_carry import call_nonce, make_call_id

    response_id, calls = "gemResp1", 0
    wire: list[dict[str, Any]] = []
    parts: list[Part] = []
    for kind in draw(st.lists(st.sampled_from(["text", "thinking", "tool"]), max_size=6)):
        if kind == "text":
            text = draw(TEXT)
            wire += [{"text": piece} for piece in pieces(draw, text)]
            if parts and isinstance(parts[-1], TextPart):
                text = parts.pop().text + text  # consecutive pieces are one block
            parts.append(TextPart(text))
        elif kind == "thinking":
            text, signature = draw(TEXT), draw(st.sampled_from(["", "Cp8BAdHt+/sig=="]))
            thought = [{"text": piece, "thought": True} for piece in pieces(draw, text)]
            if signature:
                thought[-1]["thoughtSignature"] = signature
            wire += thought
            carried = "gemini:" + signature if signature else ""
            if parts and isinstance(parts[-1], ThinkingPart):
                earlier = parts.pop()  # consecutive pieces are one block, the last signature wins
                text, carried = earlier.text + text, carried or earlier.signature
            parts.append(ThinkingPart(text, carried))
        else:
            name, arguments = draw(NAMES), draw(TOOL_INPUTS)
            gemini_id = draw(st.sampled_from(["", f"fc_{calls}"]))
            signature = "CiQBsig==" if calls == 0 and draw(st.booleans()) else ""
            call: dict[str, Any] = {"name": name, "args": arguments}
            if gemini_id:
                call["id"] = gemini_id
            part: dict[str, Any] = {"functionCall": call}
            if signature:
                part["thoughtSignature"] = signature
            wire.append(part)
            nonce = call_nonce(response_id, calls)
            parts.append(
                ToolUsePart(
                    make_call_id(name, gemini_id, signature, nonce), name, JSONValue.of(arguments)
                )
            )
            calls += 1
    finish = draw(st.sampled_from(GEMINI_FINISHES))
    prompt, candidates, thoughts = draw(COUNTS), draw(COUNTS), draw(COUNTS)
    cached = draw(st.integers(0, prompt))
    usage_meta = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "thoughtsTokenCount": thoughts,
        "cachedContentTokenCount": cached,
    }
    usage_mode = draw(st.sampled_from(["every", "last", "absent"]))

    def chunk(chunk_parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": chunk_parts}, "index": 0}
        if last:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate]}
        if usage_mode == "every" or (last and usage_mode == "last"):
            body["usageMetadata"] = usage_meta
        body["modelVersion"] = "gemini-upstream"
        body["responseId"] = response_id
        return body

    cuts = sorted(set(draw(st.lists(st.integers(0, len(wire)), max_size=len(wire)))))
    groups = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True) if b > a]
    tail = [{"text": ""}] if draw(st.booleans()) else []
    if tail and draw(st.booleans()):
        tail[0]["thoughtSignature"] = "EndOfTurnSig=="  # on a text part: not carried
    chunks = [chunk(g, False) for g in groups] + [chunk(tail, True)]
    raw = "".join(f"data: {dumps(draw, c)}\n\n" for c in chunks)
    stop = GEMINI_STOPS.get(finish, StopReason.TOOL_USE if calls else StopReason.END_TURN)
    usage = Usage(
        input_tokens=prompt - cached,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )
    truth = ChatResponse(
        id=response_id,
        model="gemini-upstream",
        parts=tuple(parts),
        stop_reason=stop,
        usage=usage if usage_mode != "absent" else Usage(),
    )
    return truth, raw.encode()


@st.composite
def responses_upstream(draw: st.DrawFn) -> tuple[ChatResponse, bytes]:
    """A Responses stream as OpenAI's API reference documents it: lifecycle events,
    each output item added, filled and done in order, one terminal event."""
    kinds = draw(st.lists(st.sampled_from(["reasoning", "message", "call"]), max_size=5))
    status = draw(st.sampled_from(["completed", "max_output_tokens", "content_filter"]))
    total_input, output = draw(COUNTS), draw(COUNTS)
    cached, reasoning_tokens = draw(st.integers(0, total_input)), draw(st.integers(0, output))
    usage = Usage(
        input_tokens=total_input - cached,
        output_tokens=output,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning_tokens,
    )
    events: list[dict[str, Any]] = []
    parts: list[Part] = []
    items: list[dict[str, Any]] = []
    base = {"id": "resp_up1", "object": "response", "created_at": 1720000000, "model": "gpt-up"}
    events.append(
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}}
    )
    events.append(
        {
            "type": "response.in_progress",
            "response": {**base, "status": "in_progress", "output": []},
        }
    )
    for index, kind in enumerate(kinds):
        at = {"item_id": f"it_{index}", "output_index": index}
        if kind == "reasoning":
            summaries = draw(st.lists(TEXT, max_size=2))
            signature = draw(st.sampled_from(["", "sig-abc"]))
            item: dict[str, Any] = {"id": f"it_{index}", "type": "reasoning", "summary": []}
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": item}
            )
            for number, text in enumerate(summaries):
                part = {"type": "summary_text", "text": ""}
                events.append(
                    {
                        "type": "response.reasoning_summary_part.added",
                        **at,
                        "summary_index": number,
                        "part": part,
                    }
                )
                for piece in pieces(draw, text):
                    events.append(
                        {
                            "type": "response.reasoning_summary_text.delta",
                            **at,
                            "summary_index": number,
                            "delta": piece,
                        }
                    )
                events.append(
                    {
                        "type": "response.reasoning_summary_text.done",
                        **at,
                        "summary_index": number,
                        "text": text,
                    }
                )
                events.append(
                    {
                        "type": "response.reasoning_summary_part.done",
                        **at,
                        "summary_index": number,
                        "part": {"type": "summary_text", "text": text},
                    }
                )
            done = {**item, "summary": [{"type": "summary_text", "text": t} for t in summaries]}
            if signature:
                done["encrypted_content"] = "llmgw-thinking:" + signature
            elif draw(st.booleans()):
                done["encrypted_content"] = "gAAAAopaque-openai-reasoning"
            if summaries:
                parts.append(ThinkingPart("\n\n".join(summaries), signature))
        elif kind == "message":
            text = draw(TEXT)
            item = {
                "id": f"it_{index}",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": item}
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append(
                {"type": "response.content_part.added", **at, "content_index": 0, "part": part}
            )
            for piece in pieces(draw, text):
                events.append(
                    {
                        "type": "response.output_text.delta",
                        **at,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    }
                )
            events.append(
                {
                    "type": "response.output_text.done",
                    **at,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
            done_part = {"type": "output_text", "text": text, "annotations": []}
            events.append(
                {"type": "response.content_part.done", **at, "content_index": 0, "part": done_part}
            )
            done = {**item, "status": "completed", "content": [done_part]}
            parts.append(TextPart(text))
        else:
            name, arguments = draw(NAMES), draw(TOOL_INPUTS)
            text = dumps(draw, arguments) if arguments or draw(st.booleans()) else ""
            item = {
                "id": f"it_{index}",
                "type": "function_call",
                "status": "in_progress",
                "call_id": f"call_{index}",
                "name": name,
                "arguments": "",
            }
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": item}
            )
            for piece in pieces(draw, text):
                events.append(
                    {"type": "response.function_call_arguments.delta", **at, "delta": piece}
                )
            events.append(
                {"type": "response.function_call_arguments.done", **at, "arguments": text}
            )
            done = {**item, "status": "completed", "arguments": text}
            parts.append(ToolUsePart(f"call_{index}", name, JSONValue.of(arguments)))
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        items.append(done)
    final = {
        **base,
        "status": "completed" if status == "completed" else "incomplete",
        "incomplete_details": None if status == "completed" else {"reason": status},
        "output": items,
        "usage": {
            "input_tokens": total_input,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": total_input + output,
        },
    }
    terminal = "response.completed" if status == "completed" else "response.incomplete"
    events.append({"type": terminal, "response": final})
    raw = "".join(
        f"event: {e['type']}\ndata: {dumps(draw, {**e, 'sequence_number': n})}\n\n"
        for n, e in enumerate(events)
    )
    if status == "max_output_tokens":
        stop = StopReason.MAX_TOKENS
    elif status == "content_filter":
        stop = StopReason.REFUSAL
    else:
        stop = StopReason.TOOL_USE if "call" in kinds else StopReason.END_TURN
    truth = ChatResponse("resp_up1", "gpt-up", tuple(parts), stop, None, usage)
    return truth, raw.encode()


UPSTREAMS = {
    "gemini-generate-content": gemini_upstream,
    "anthropic-messages": anthropic_upstream,
    "openai-chat": openai_chat_upstream,
    "openai-completions": openai_completions_upstream,
    "openai-responses": responses_upstream,
}


def split_bytes(raw: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(raw) + 1) for p in points})
    return [raw[a:b] for a, b in zip([0, *marks], [*marks, len(raw)], strict=True)]


# --- the properties ------------------------------------------------------------------


@pytest.mark.parametrize("client", FORMATS)
@pytest.mark.parametrize("upstream", FORMATS)
@SETTINGS
@given(data=st.data())
def test_any_upstream_stream_converts_faithfully(upstream: str, client: str, data: Any) -> None:
    truth, raw = data.draw(UPSTREAMS[upstream](), label="upstream")
    raw = raw.replace(b"\n", data.draw(st.sampled_from([b"\n", b"\r\n", b"\r"]), label="eol"))
    chunks = split_bytes(raw, data.draw(st.lists(st.integers(0, 10**9), max_size=25)))
    include_usage = data.draw(st.booleans(), label="include_usage")
    piped = pipe(chunks, upstream, client, include_usage=include_usage)
    check_unified(piped.unified)
    assert accumulate(piped.unified) == truth
    view = check_client(piped, client, include_usage=include_usage)
    assert view == expected_view(truth, client, include_usage=include_usage)


@st.composite
def interleaved_unified(draw: st.DrawFn) -> tuple[ChatResponse, list[UnifiedEvent]]:
    """A legal unified stream whose tool calls interleave arbitrarily with other blocks."""
    blocks: list[list[UnifiedEvent]] = []
    parts: list[Part] = []
    prose: set[int] = set()
    for index, kind in enumerate(
        draw(st.lists(st.sampled_from(["text", "thinking", "tool", "redacted"]), max_size=5))
    ):
        if kind == "text":
            text = draw(TEXT)
            events: list[UnifiedEvent] = [TextDelta(index, p) for p in pieces(draw, text)]
            parts.append(TextPart(text))
        elif kind == "thinking":
            text, signature = draw(TEXT), draw(st.sampled_from(["", "sig"]))
            events = [ThinkingDelta(index, p) for p in pieces(draw, text)]
            if signature:
                events.append(SignatureDelta(index, signature))
            parts.append(ThinkingPart(text, signature))
        elif kind == "tool":
            arguments = draw(TOOL_INPUTS)
            text = json.dumps(arguments) if arguments or draw(st.booleans()) else ""
            events = [ToolCallStart(index, f"call_{index}", draw(NAMES))]
            events += [ToolArgsDelta(index, p) for p in pieces(draw, text)]
            parts.append(ToolUsePart(f"call_{index}", events[0].name, JSONValue.of(arguments)))  # type: ignore[union-attr]
        else:
            events = [RedactedThinking(index, "opaque")]
            parts.append(RedactedThinkingPart("opaque"))
        if kind != "tool":
            prose.add(index)
        blocks.append([*events, BlockStop(index)])
    usage = Usage(input_tokens=draw(COUNTS), output_tokens=draw(COUNTS))
    stop = draw(st.sampled_from(list(StopReason)))
    late_usage = draw(st.booleans())
    stream: list[UnifiedEvent] = [MessageStart("msg_x", "up", None if late_usage else usage)]
    stream += interleave(draw, blocks, frozenset(prose))
    stream.append(MessageDelta(stop, None, None if late_usage else usage))
    if late_usage:
        stream.append(MessageDelta(None, None, usage))
    stream.append(MessageStop())
    truth = ChatResponse("msg_x", "up", tuple(parts), stop, None, usage)
    return truth, stream


@pytest.mark.parametrize("client", FORMATS)
@SETTINGS
@given(case=interleaved_unified(), include_usage=st.booleans())
def test_interleaved_blocks_render_as_a_valid_stream(
    client: str, case: tuple[ChatResponse, list[UnifiedEvent]], include_usage: bool
) -> None:
    truth, events = case
    check_unified(events)
    assert accumulate(events) == truth
    renderer = STREAM_FORMATS[client].renderer_factory(
        model=MODEL, include_usage=include_usage, created=CREATED
    )
    writes = [renderer.feed(event) for event in events] + [renderer.finish()]
    piped = type("P", (), {"output": b"".join(writes)})()
    assert check_client(piped, client, include_usage=include_usage) == expected_view(
        truth, client, include_usage=include_usage
    )


ERROR_EVENTS = {
    "anthropic-messages": b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"upstream broke"}}\n\n',
    "openai-chat": b'data: {"error":{"message":"upstream broke","type":"server_error","param":null,"code":null}}\n\n',
    "openai-completions": b'data: {"error":{"message":"upstream broke","type":"server_error","param":null,"code":null}}\n\n',
    "gemini-generate-content": b'data: {"error":{"code":500,"message":"upstream broke","status":"INTERNAL"}}\n\n',
    "openai-responses": b'event: error\ndata: {"type":"error","code":"server_error","message":"upstream broke","param":null,"sequence_number":99}\n\n',
}


@pytest.mark.parametrize("client", FORMATS)
@pytest.mark.parametrize("upstream", FORMATS)
@SETTINGS
@given(data=st.data())
def test_upstream_error_between_any_two_events(upstream: str, client: str, data: Any) -> None:
    _, raw = data.draw(UPSTREAMS[upstream](), label="upstream")
    events = raw.split(b"\n\n")[:-1]
    keep = data.draw(st.integers(0, len(events) - 1), label="events kept")
    broken = b"".join(e + b"\n\n" for e in events[:keep]) + ERROR_EVENTS[upstream]
    piped = pipe(broken, upstream, client, include_usage=True)
    check_unified(piped.unified)
    view = check_client(piped, client, include_usage=True)
    assert view.error is not None and view.error[1] == "upstream broke"
    with pytest.raises(StreamFailed):
        accumulate(piped.unified)


@pytest.mark.parametrize("client", FORMATS)
@pytest.mark.parametrize("upstream", FORMATS)
@SETTINGS
@given(data=st.data())
def test_upstream_cut_off_anywhere_ends_the_client_stream_cleanly(
    upstream: str, client: str, data: Any
) -> None:
    truth, raw = data.draw(UPSTREAMS[upstream](), label="upstream")
    end = data.draw(st.integers(0, len(raw) - 1), label="bytes kept")
    piped = pipe(raw[:end], upstream, client, include_usage=True)
    check_unified(piped.unified)
    view = check_client(piped, client, include_usage=True)  # valid, complete or errored
    if view.error is None:
        # Only the terminal events were lost (finish seen): the content is all there.
        full = expected_view(truth, client, include_usage=True)
        assert view.__class__(**{**vars(view), "usage": full.usage}) == full
    else:
        assert view.error[1] != ""
