"""Hypothesis strategies for request and response bodies in each wire format.

Every strategy builds bodies over the documented field set of its format, in
the codecs' canonical form (content is a string when it is one plain text
part, an array otherwise; false flags omitted; OpenAI ``stop`` as an array).

``portable=True`` restricts a strategy to what the *other* formats can carry
too, so A -> B -> A must give the body back unchanged; what the restriction
leaves out is each format's no-counterpart policy, tested row by row in
test_formats_policy.py.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Draw = Any  # hypothesis' draw callable

text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
maybe_empty_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
ident = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
b64 = st.from_regex(r"[A-Za-z0-9+/]{4,16}={0,2}", fullmatch=True)
unit = st.floats(min_value=0, max_value=1, allow_nan=False)
positive = st.integers(min_value=1, max_value=200_000)
count = st.integers(min_value=0, max_value=1_000_000)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    maybe_empty_text,
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ident, children, max_size=3),
    max_leaves=6,
)
json_object = st.dictionaries(ident, json_value, max_size=4)
schema = st.fixed_dictionaries(
    {
        "type": st.just("object"),
        "properties": st.dictionaries(ident, st.just({"type": "string"}), max_size=3),
    }
)


def compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _optional(draw: Draw, out: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


# -- OpenAI chat requests -----------------------------------------------------------------


def _chat_text_content(draw: Draw) -> str | list[dict[str, Any]]:
    if draw(st.booleans()):
        return str(draw(text))
    return [{"type": "text", "text": t} for t in draw(st.lists(text, min_size=2, max_size=3))]


def _chat_image(draw: Draw) -> dict[str, Any]:
    if draw(st.booleans()):
        url = f"data:image/{draw(st.sampled_from(['png', 'jpeg', 'webp']))};base64,{draw(b64)}"
    else:
        url = f"https://example.com/{draw(ident)}.png"
    return {"type": "image_url", "image_url": {"url": url}}


def _chat_user_part(draw: Draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["text", "image", "file"]))
    if kind == "text":
        return {"type": "text", "text": draw(text)}
    if kind == "image":
        return _chat_image(draw)
    data = f"data:application/pdf;base64,{draw(b64)}"
    return {"type": "file", "file": {"file_data": data, "filename": f"{draw(ident)}.pdf"}}


def _chat_user_content(draw: Draw) -> str | list[dict[str, Any]]:
    if draw(st.booleans()):
        return str(draw(text))
    parts = [_chat_user_part(draw) for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    if len(parts) == 1 and parts[0]["type"] == "text":
        parts.append({"type": "text", "text": draw(text)})
    return parts


def _chat_tool_calls(draw: Draw) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{draw(ident)}",
            "type": "function",
            "function": {"name": draw(ident), "arguments": compact(draw(json_object))},
        }
        for _ in range(draw(st.integers(min_value=1, max_value=3)))
    ]


def _chat_assistant(draw: Draw) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if draw(st.booleans()):
        message["tool_calls"] = _chat_tool_calls(draw)
        message["content"] = draw(st.none() | text)
    else:
        message["content"] = _chat_text_content(draw)
    return message


def _chat_tool_group(draw: Draw) -> list[dict[str, Any]]:
    group: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        content: Any = (
            draw(maybe_empty_text)
            if draw(st.booleans())
            else [{"type": "text", "text": t} for t in draw(st.lists(text, min_size=2, max_size=3))]
        )
        group.append({"role": "tool", "tool_call_id": f"call_{draw(ident)}", "content": content})
    if draw(st.booleans()):
        group.append({"role": "user", "content": _chat_user_content(draw)})
    return group


def _chat_tools(draw: Draw, portable: bool) -> list[dict[str, Any]]:
    tools = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        function: dict[str, Any] = {"name": draw(ident)}
        _optional(draw, function, "description", text)
        if portable or draw(st.booleans()):
            function["parameters"] = draw(schema)
        _optional(draw, function, "strict", st.booleans())
        tools.append({"type": "function", "function": function})
    return tools


@st.composite
def chat_requests(draw: Draw, *, portable: bool = False) -> dict[str, Any]:
    """OpenAI chat requests. Portable: what Anthropic can carry too."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        role = "system" if portable else draw(st.sampled_from(["system", "developer"]))
        messages.append({"role": role, "content": _chat_text_content(draw)})
    last = "assistant"
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if last == "assistant":
            if draw(st.booleans()):
                messages.append({"role": "user", "content": _chat_user_content(draw)})
            else:
                messages.extend(_chat_tool_group(draw))
            last = "user"
        else:
            messages.append(_chat_assistant(draw))
            last = "assistant"
        if not portable and draw(st.integers(min_value=0, max_value=5)) == 0:
            messages.append({"role": "system", "content": draw(text)})
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(["gpt-4.1", "claude-sonnet-4-5", "claude-opus-4-6"]))
    }
    body["messages"] = messages
    effort = None
    if draw(st.booleans()):
        choices = (
            ["low", "medium", "high"]
            if portable
            else ["none", "minimal", "low", "medium", "high", "xhigh"]
        )
        effort = body["reasoning_effort"] = draw(st.sampled_from(choices))
    if portable:
        sizes = st.integers(min_value=20_000, max_value=64_000) if effort else positive
        body["max_completion_tokens"] = draw(sizes)
    else:
        _optional(draw, body, "max_completion_tokens", positive)
    if not (portable and effort):
        _optional(draw, body, "temperature", unit if portable else st.floats(0, 2, allow_nan=False))
        _optional(draw, body, "top_p", unit)
    _optional(draw, body, "stop", st.lists(text, min_size=1, max_size=4))
    if draw(st.booleans()):
        body["stream"] = True
        if portable or draw(st.booleans()):
            body["stream_options"] = {"include_usage": True}
    _optional(draw, body, "user", text)
    if not portable:
        _optional(draw, body, "seed", st.integers(min_value=0, max_value=2**31))
        _optional(draw, body, "frequency_penalty", st.floats(-2, 2, allow_nan=False))
        _optional(draw, body, "presence_penalty", st.floats(-2, 2, allow_nan=False))
        _optional(
            draw,
            body,
            "logit_bias",
            st.dictionaries(
                st.from_regex(r"[0-9]{1,5}", fullmatch=True),
                st.integers(-100, 100),
                min_size=1,
                max_size=3,
            ),
        )
    tiers = ["auto", "default"] if portable else ["auto", "default", "flex", "priority"]
    _optional(draw, body, "service_tier", st.sampled_from(tiers))
    if draw(st.booleans()):
        body["tools"] = _chat_tools(draw, portable)
        names = [t["function"]["name"] for t in body["tools"]]
        choice: Any = draw(
            st.none()
            | st.sampled_from(["auto", "none", "required"])
            | st.sampled_from(names).map(lambda n: {"type": "function", "function": {"name": n}})
        )
        forced = choice == "required" or isinstance(choice, dict)
        if portable and effort and forced:
            choice = "auto"
        if choice is not None:
            body["tool_choice"] = choice
        if not portable or choice not in (None, "none"):
            _optional(draw, body, "parallel_tool_calls", st.booleans())
    if draw(st.booleans()):
        if portable:
            spec = {"name": "response", "schema": draw(schema)}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif draw(st.booleans()):
            body["response_format"] = {"type": draw(st.sampled_from(["text", "json_object"]))}
        else:
            spec = {"name": draw(ident)}
            _optional(draw, spec, "description", text)
            _optional(draw, spec, "schema", schema)
            _optional(draw, spec, "strict", st.booleans())
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
    return body


# -- Anthropic requests -----------------------------------------------------------------------

cache_marker = st.sampled_from([{"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}]).map(
    dict
)


def _with_cache(draw: Draw, block: dict[str, Any], portable: bool) -> dict[str, Any]:
    if not portable and draw(st.booleans()):
        block["cache_control"] = draw(cache_marker)
    return block


def _ant_source(draw: Draw, media: str) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"type": "base64", "media_type": media, "data": draw(b64)}
    return {"type": "url", "url": f"https://example.com/{draw(ident)}"}


def _ant_blocks(draw: Draw, blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Canonical content: a lone plain text block is a string."""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and "cache_control" not in blocks[0]:
        return str(blocks[0]["text"])
    return blocks


def _ant_text(draw: Draw, portable: bool) -> dict[str, Any]:
    return _with_cache(draw, {"type": "text", "text": draw(text)}, portable)


def _ant_tool_result(draw: Draw, portable: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": f"toolu_{draw(ident)}"}
    if draw(st.booleans()):
        inner = [_ant_text(draw, portable) for _ in range(draw(st.integers(1, 2)))]
        if not portable and draw(st.booleans()):
            inner.append(
                _with_cache(
                    draw, {"type": "image", "source": _ant_source(draw, "image/png")}, portable
                )
            )
        if portable and len(inner) == 1:
            inner.append(_ant_text(draw, portable))
        block["content"] = _ant_blocks(draw, inner)
    if not portable and draw(st.booleans()):
        block["is_error"] = True
    return _with_cache(draw, block, portable)


def _ant_user(draw: Draw, portable: bool) -> dict[str, Any]:
    blocks = [_ant_tool_result(draw, portable) for _ in range(draw(st.integers(0, 2)))]
    for _ in range(draw(st.integers(0 if blocks else 1, 3))):
        kind = draw(st.sampled_from(["text", "image", "document"]))
        if kind == "text":
            blocks.append(_ant_text(draw, portable))
        elif kind == "image":
            media = draw(st.sampled_from(["image/png", "image/jpeg"]))
            blocks.append(
                _with_cache(draw, {"type": "image", "source": _ant_source(draw, media)}, portable)
            )
        else:
            doc: dict[str, Any] = {"type": "document"}
            if portable:
                doc["source"] = {
                    "type": "base64",
                    "media_type": "application/pdf",
                    "data": draw(b64),
                }
                doc["title"] = f"{draw(ident)}.pdf"
            else:
                doc["source"] = _ant_source(draw, "application/pdf")
                _optional(draw, doc, "title", text)
            blocks.append(_with_cache(draw, doc, portable))
    return {"role": "user", "content": _ant_blocks(draw, blocks)}


def _ant_assistant(draw: Draw, portable: bool) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if not portable and draw(st.booleans()):
        blocks.append({"type": "thinking", "thinking": draw(text), "signature": draw(b64)})
        if draw(st.booleans()):
            blocks.append({"type": "redacted_thinking", "data": draw(b64)})
    texts = draw(st.integers(0, 2))
    calls = draw(st.integers(0 if texts else 1, 2))
    blocks.extend(_ant_text(draw, portable) for _ in range(texts))
    for _ in range(calls):
        call = {
            "type": "tool_use",
            "id": f"toolu_{draw(ident)}",
            "name": draw(ident),
            "input": draw(json_object),
        }
        blocks.append(_with_cache(draw, call, portable))
    return {"role": "assistant", "content": _ant_blocks(draw, blocks)}


@st.composite
def anthropic_requests(draw: Draw, *, portable: bool = False) -> dict[str, Any]:
    """Anthropic requests. Portable: what OpenAI chat can carry too."""
    model = draw(st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-6", "gpt-4.1"]))
    body: dict[str, Any] = {"model": model}
    if draw(st.booleans()):
        system = [_ant_text(draw, portable) for _ in range(draw(st.integers(1, 3)))]
        body["system"] = _ant_blocks(draw, system)
    roles = ["user", "assistant"] * 3
    turns = draw(st.integers(min_value=1, max_value=5))
    body["messages"] = [
        _ant_user(draw, portable) if role == "user" else _ant_assistant(draw, portable)
        for role in roles[:turns]
    ]
    thinking_on = False
    if draw(st.booleans()):
        adaptive_model = model == "claude-opus-4-6"
        if portable and adaptive_model:
            body["thinking"] = {"type": "adaptive"}
            body["output_config"] = {"effort": draw(st.sampled_from(["low", "medium", "high"]))}
        elif portable:
            body["thinking"] = {
                "type": "enabled",
                "budget_tokens": draw(st.sampled_from([2048, 8192, 16384])),
            }
        else:
            body["thinking"] = draw(
                st.sampled_from([{"type": "adaptive"}, {"type": "disabled"}]).map(dict)
                | st.integers(1024, 30_000).map(lambda b: {"type": "enabled", "budget_tokens": b})
            )
            if draw(st.booleans()):
                body["output_config"] = {
                    "effort": draw(st.sampled_from(["low", "medium", "high", "max"]))
                }
        thinking_on = body["thinking"]["type"] != "disabled"
    elif not portable and draw(st.booleans()):
        body["output_config"] = {"effort": draw(st.sampled_from(["low", "medium", "high", "max"]))}
    body["max_tokens"] = draw(st.integers(20_000, 64_000) if thinking_on else positive)
    if not thinking_on:
        _optional(draw, body, "temperature", unit)
        _optional(draw, body, "top_p", unit)
        if not portable:
            _optional(draw, body, "top_k", st.integers(0, 500))
    _optional(draw, body, "stop_sequences", st.lists(text, min_size=1, max_size=3))
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(text)}
    _optional(draw, body, "service_tier", st.sampled_from(["auto", "standard_only"]))
    if draw(st.booleans()):
        tools = []
        for _ in range(draw(st.integers(1, 3))):
            tool: dict[str, Any] = {"name": draw(ident)}
            _optional(draw, tool, "description", text)
            tool["input_schema"] = draw(schema)
            _optional(draw, tool, "strict", st.booleans())
            tools.append(_with_cache(draw, tool, portable))
        body["tools"] = tools
        kinds = ["auto", "none"] if thinking_on else ["auto", "any", "none", "tool"]
        kind = draw(st.none() | st.sampled_from(kinds))
        if kind is not None:
            choice: dict[str, Any] = {"type": kind}
            if kind == "tool":
                choice["name"] = draw(st.sampled_from([t["name"] for t in tools]))
            if kind != "none":
                _optional(draw, choice, "disable_parallel_tool_use", st.booleans())
            body["tool_choice"] = choice
    if draw(st.booleans()):
        body.setdefault("output_config", {})["format"] = {
            "type": "json_schema",
            "schema": draw(schema),
        }
    return body


# -- legacy completions requests ------------------------------------------------------------------


@st.composite
def completions_requests(draw: Draw, *, portable_to_anthropic: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": draw(ident),
        "prompt": draw(text if portable_to_anthropic else maybe_empty_text),
    }
    if portable_to_anthropic:
        body["max_tokens"] = draw(positive)
    else:
        _optional(draw, body, "max_tokens", positive)
    _optional(draw, body, "temperature", unit)
    _optional(draw, body, "top_p", unit)
    _optional(draw, body, "stop", st.lists(text, min_size=1, max_size=4))
    if draw(st.booleans()):
        body["stream"] = True
        if portable_to_anthropic or draw(st.booleans()):
            body["stream_options"] = {"include_usage": True}
    _optional(draw, body, "user", text)
    if not portable_to_anthropic:
        _optional(draw, body, "seed", st.integers(0, 2**31))
        _optional(draw, body, "frequency_penalty", st.floats(-2, 2, allow_nan=False))
        _optional(draw, body, "presence_penalty", st.floats(-2, 2, allow_nan=False))
        _optional(
            draw,
            body,
            "logit_bias",
            st.dictionaries(
                st.from_regex(r"[0-9]{1,5}", fullmatch=True),
                st.integers(-100, 100),
                min_size=1,
                max_size=3,
            ),
        )
    return body


# -- responses ----------------------------------------------------------------------------------------------


def _ant_usage(draw: Draw, *, writes: bool) -> dict[str, int]:
    return {
        "input_tokens": draw(count),
        "output_tokens": draw(count),
        "cache_creation_input_tokens": draw(count) if writes else 0,
        "cache_read_input_tokens": draw(count),
    }


@st.composite
def anthropic_responses(draw: Draw, *, portable: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if portable:
        if draw(st.booleans()):
            content.append({"type": "text", "text": draw(text)})
    else:
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                content.append({"type": "thinking", "thinking": draw(text), "signature": draw(b64)})
            else:
                content.append({"type": "redacted_thinking", "data": draw(b64)})
        content.extend(
            {"type": "text", "text": draw(maybe_empty_text)} for _ in range(draw(st.integers(0, 2)))
        )
    for _ in range(draw(st.integers(0, 3))):
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{draw(ident)}",
                "name": draw(ident),
                "input": draw(json_object),
            }
        )
    stops = ["end_turn", "max_tokens", "tool_use", "refusal"]
    if not portable:
        stops += ["stop_sequence", "pause_turn"]
    stop_reason = draw(st.none() | st.sampled_from(stops))
    return {
        "id": f"msg_{draw(ident)}",
        "type": "message",
        "role": "assistant",
        "model": draw(ident),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None if portable else draw(st.none() | text),
        "usage": _ant_usage(draw, writes=not portable),
    }


def _openai_usage(draw: Draw, *, reasoning: bool) -> dict[str, Any]:
    prompt, completion = draw(count), draw(count)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": draw(st.integers(0, prompt))},
        "completion_tokens_details": {"reasoning_tokens": draw(count) if reasoning else 0},
    }


@st.composite
def chat_responses(draw: Draw, *, portable: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    calls = _chat_tool_calls(draw) if draw(st.booleans()) else []
    message["content"] = draw(st.none() | text) if calls else draw(maybe_empty_text)
    message["refusal"] = None
    if draw(st.booleans()):
        message["reasoning_content"] = draw(text)
    if calls:
        message["tool_calls"] = calls
    finish = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])
    return {
        "id": f"chatcmpl-{draw(ident)}",
        "object": "chat.completion",
        "created": 0 if portable else draw(st.integers(0, 2**31)),
        "model": draw(ident),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": draw(st.none() | finish),
            }
        ],
        "usage": _openai_usage(draw, reasoning=not portable),
    }


@st.composite
def completions_responses(draw: Draw, *, portable_to_anthropic: bool = False) -> dict[str, Any]:
    finish = st.sampled_from(["stop", "length", "content_filter"])
    return {
        "id": f"cmpl-{draw(ident)}",
        "object": "text_completion",
        "created": 0 if portable_to_anthropic else draw(st.integers(0, 2**31)),
        "model": draw(ident),
        "choices": [
            {
                "text": draw(maybe_empty_text),
                "index": 0,
                "logprobs": None,
                "finish_reason": draw(st.none() | finish),
            }
        ],
        "usage": _openai_usage(draw, reasoning=not portable_to_anthropic),
    }


# -- the strategies cover the documented field sets --------------------------------------------

CHAT_FIELDS = {
    "model", "messages", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "user", "seed", "frequency_penalty", "presence_penalty", "logit_bias",
    "service_tier", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "reasoning_effort",
}  # fmt: skip
ANTHROPIC_FIELDS = {
    "model", "messages", "max_tokens", "system", "thinking", "output_config", "temperature",
    "top_p", "top_k", "stop_sequences", "stream", "metadata", "service_tier", "tools", "tool_choice",
}  # fmt: skip
COMPLETIONS_FIELDS = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "stop", "stream", "stream_options",
    "user", "seed", "frequency_penalty", "presence_penalty", "logit_bias",
}  # fmt: skip


def _fields_seen(strategy: st.SearchStrategy[dict[str, Any]]) -> set[str]:
    from hypothesis import given, settings

    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(strategy)
    def collect(body: dict[str, Any]) -> None:
        seen.update(body)

    collect()
    return seen


def test_strategies_generate_every_documented_field() -> None:
    cases = [
        (chat_requests(), CHAT_FIELDS),
        (anthropic_requests(), ANTHROPIC_FIELDS),
        (completions_requests(), COMPLETIONS_FIELDS),
    ]
    for strategy, fields in cases:
        assert _fields_seen(strategy) == fields
