"""Property tests for the Gemini codec, in the style of test_formats_roundtrip.py.

* Same format: a canonical Gemini request or response, parsed and rendered
  back, is unchanged (function-call ids and thought signatures included: they
  travel through the unified form inside the tool-call id and the thinking
  signature).
* Across formats: a response restricted to what the other format can carry,
  converted Gemini -> OpenAI chat -> Gemini and Gemini -> Anthropic ->
  Gemini, is unchanged; so is a request through OpenAI chat.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_formats_malformed import mutated
from test_formats_strategies import b64, ident, json_object, positive, text, unit

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats.registry import FORMATS

GEMINI = FORMATS["gemini-generate-content"]
CHAT = FORMATS["openai-chat"]
ANTHROPIC = FORMATS["anthropic-messages"]

examples = settings(max_examples=100, deadline=None, derandomize=True, database=None)
Draw = Any

signature = st.from_regex(r"[A-Za-z0-9+/]{8,24}={0,2}", fullmatch=True)
counts = st.integers(min_value=0, max_value=100_000)
parameters = st.fixed_dictionaries(
    {
        "type": st.just("object"),
        "properties": st.dictionaries(
            ident,
            st.sampled_from([{"type": "string"}, {"type": "integer"}]),
            min_size=1,
            max_size=3,
        ),
    }
)


def via_json(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False))
    return result


def _call(draw: Draw, number: int, *, ids: bool, signed: bool) -> dict[str, Any]:
    call: dict[str, Any] = {"name": draw(ident), "args": draw(json_object)}
    if ids and draw(st.booleans()):
        call["id"] = f"fc_{number}"
    part: dict[str, Any] = {"functionCall": call}
    if signed:
        part["thoughtSignature"] = draw(signature)
    return part


# -- requests ------------------------------------------------------------------------


def _user_parts(
    draw: Draw, answering: list[dict[str, Any]], portable: bool
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for call in answering:  # the answers to the previous model turn's calls, in order
        key = "output" if portable or draw(st.booleans()) else "error"
        response: dict[str, Any] = {"name": call["name"], "response": {key: draw(text)}}
        if "id" in call:
            response["id"] = call["id"]
        parts.append({"functionResponse": response})
    kinds = ["text", "image", "url"] if portable else ["text", "image", "url", "pdf"]
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=0 if parts else 1, max_size=3)):
        if kind == "text":
            parts.append({"text": draw(text)})
        elif kind == "image":
            parts.append({"inlineData": {"mimeType": "image/png", "data": draw(b64)}})
        elif kind == "url":
            parts.append({"fileData": {"fileUri": "https://example.com/" + draw(ident) + ".png"}})
        else:
            uri = "https://example.com/" + draw(ident) + ".pdf"
            parts.append({"fileData": {"mimeType": "application/pdf", "fileUri": uri}})
    return parts


def _model_parts(draw: Draw, turn: int, portable: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if not portable and draw(st.booleans()):
        parts.append({"text": draw(text), "thought": True, "thoughtSignature": draw(signature)})
    if draw(st.booleans()):
        parts.append({"text": draw(text)})
    calls = draw(st.integers(0 if parts else 1, 3))
    for number in range(calls):
        # Gemini signs the first call of a turn; the placeholder would be added otherwise.
        parts.append(_call(draw, turn * 10 + number, ids=True, signed=number == 0))
    return parts


@st.composite
def gemini_requests(draw: Draw, *, portable: bool = False) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    answering: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(0, 2))):
        contents.append({"role": "user", "parts": _user_parts(draw, answering, portable)})
        parts = _model_parts(draw, turn, portable)
        contents.append({"role": "model", "parts": parts})
        answering = [p["functionCall"] for p in parts if "functionCall" in p]
    contents.append({"role": "user", "parts": _user_parts(draw, answering, portable)})
    body: dict[str, Any] = {"contents": contents}
    if draw(st.booleans()):
        body["systemInstruction"] = {
            "parts": [{"text": t} for t in draw(st.lists(text, min_size=1, max_size=2))]
        }
    names = draw(st.lists(ident, max_size=3, unique=True))
    if names:
        declarations = []
        for name in names:
            declaration: dict[str, Any] = {"name": name}
            if draw(st.booleans()):
                declaration["description"] = draw(text)
            if draw(st.booleans()):
                declaration["parameters"] = draw(parameters)
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
        mode = draw(st.sampled_from(["AUTO", "ANY", "NONE", "forced", None]))
        if mode == "forced":
            config = {"mode": "ANY", "allowedFunctionNames": [draw(st.sampled_from(names))]}
            body["toolConfig"] = {"functionCallingConfig": config}
        elif mode is not None:
            body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    generation: dict[str, Any] = {}
    for key, strategy in (
        ("temperature", unit),
        ("topP", unit),
        ("maxOutputTokens", positive),
        ("seed", st.integers(0, 2**31)),
        ("frequencyPenalty", unit),
        ("presencePenalty", unit),
        ("stopSequences", st.lists(text, min_size=1, max_size=3)),
    ):
        if draw(st.booleans()):
            generation[key] = draw(strategy)
    if not portable:
        if draw(st.booleans()):
            generation["topK"] = draw(st.integers(1, 64))
        thinking = draw(
            st.sampled_from(
                [None, {"includeThoughts": True}, {"thinkingLevel": "low", "includeThoughts": True}]
                + [{"thinkingLevel": "high", "includeThoughts": True}]
            )
            | positive.map(lambda n: {"thinkingBudget": n, "includeThoughts": True})
        )
        if thinking is not None:
            generation["thinkingConfig"] = thinking
        output = draw(st.sampled_from([None, "json", "schema"]))
        if output is not None:
            generation["responseMimeType"] = "application/json"
        if output == "schema":
            generation["responseJsonSchema"] = draw(parameters)
    if generation:
        body["generationConfig"] = generation
    return body


def request_trip(body: dict[str, Any], *formats: Any) -> dict[str, Any]:
    unified = formats[0].parse_request(body)
    rendered: dict[str, Any] = {}
    for fmt in formats[1:]:
        rendered = via_json(fmt.render_request(unified))
        if fmt is not GEMINI:
            rendered.setdefault("model", "m")
        unified = fmt.parse_request(rendered)
    return rendered


@examples
@given(gemini_requests())
def test_gemini_request_round_trip(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), GEMINI, GEMINI) == via_json(body)


@examples
@given(gemini_requests(portable=True))
def test_gemini_request_through_chat(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), GEMINI, CHAT, GEMINI) == via_json(body)


# -- responses -----------------------------------------------------------------------


@st.composite
def gemini_responses(draw: Draw, *, portable: str = "") -> dict[str, Any]:
    """``portable``: "" (Gemini only), "chat" or "anthropic"."""
    parts: list[dict[str, Any]] = []
    if draw(st.booleans()):
        thought: dict[str, Any] = {"text": draw(text), "thought": True}
        if portable != "chat" and draw(st.booleans()):
            thought["thoughtSignature"] = draw(signature)
        parts.append(thought)
    for _ in range(draw(st.integers(0, 1 if portable == "chat" else 2))):
        parts.append({"text": draw(text)})
    calls = draw(st.integers(0, 3))
    parts += [_call(draw, n, ids=True, signed=n == 0 and draw(st.booleans())) for n in range(calls)]
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    finish = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", None]))
    if portable and finish is None:
        finish = "STOP"
    if finish is not None:
        candidate["finishReason"] = finish
    prompt, candidates = draw(counts), draw(counts)
    cached = draw(st.integers(0, prompt))
    thoughts = 0 if portable == "anthropic" else draw(counts)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": draw(ident),
    }


def response_trip(body: dict[str, Any], *formats: Any) -> dict[str, Any]:
    unified = formats[0].parse_response(body)
    rendered: dict[str, Any] = {}
    for fmt in formats[1:]:
        rendered = via_json(fmt.render_response(unified, model=body["modelVersion"]))
        unified = fmt.parse_response(rendered)
    return rendered


@examples
@given(gemini_responses())
def test_gemini_response_round_trip(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), GEMINI, GEMINI) == via_json(body)


@examples
@given(gemini_responses(portable="chat"))
def test_gemini_response_through_chat(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), GEMINI, CHAT, GEMINI) == via_json(body)


@examples
@given(gemini_responses(portable="anthropic"))
def test_gemini_response_through_anthropic(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), GEMINI, ANTHROPIC, GEMINI) == via_json(body)


# -- malformed bodies ------------------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(mutated(gemini_requests()))
def test_malformed_gemini_requests_raise_invalid_request(body: Any) -> None:
    try:
        unified = GEMINI.parse_request(body)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    for target in FORMATS.values():
        with contextlib.suppress(InvalidRequest):  # refusing to render is allowed
            target.render_request(unified)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(mutated(gemini_responses()))
def test_malformed_gemini_responses_raise_upstream_error(body: Any) -> None:
    try:
        unified = GEMINI.parse_response(body)
    except UpstreamError as exc:
        assert exc.status == 502
        return
    for target in FORMATS.values():
        target.render_response(unified, model="client-model")
