"""Property tests: conversions lose nothing a format can carry.

* Same format: any canonical body of format A, parsed to the unified form and
  rendered back as A, is unchanged.
* Across formats: a body of A restricted to what B can carry (``portable``),
  converted A -> B -> A, is unchanged.

The strategies (tests/test_formats_strategies.py) cover each format's documented
field set; what ``portable`` leaves out is each no-counterpart policy, which
test_formats_policy.py checks row by row.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from test_formats_strategies import (
    anthropic_requests,
    anthropic_responses,
    chat_requests,
    chat_responses,
    completions_requests,
    completions_responses,
)

from llm_gateway.formats.registry import FORMATS

CHAT = FORMATS["openai-chat"]
ANTHROPIC = FORMATS["anthropic-messages"]
COMPLETIONS = FORMATS["openai-completions"]

examples = settings(max_examples=100, deadline=None, derandomize=True, database=None)


def via_json(body: dict[str, Any]) -> dict[str, Any]:
    """What a client would send: the body after a JSON encode/decode."""
    result: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False))
    return result


def request_trip(body: dict[str, Any], *formats: Any) -> dict[str, Any]:
    """Parse with the first format, then render and re-parse through the rest."""
    unified = formats[0].parse_request(body)
    rendered: dict[str, Any] = {}
    for fmt in formats[1:]:
        rendered = via_json(fmt.render_request(unified))
        unified = fmt.parse_request(rendered)
    return rendered


def response_trip(body: dict[str, Any], *formats: Any) -> dict[str, Any]:
    unified = formats[0].parse_response(body)
    rendered: dict[str, Any] = {}
    for fmt in formats[1:]:
        rendered = via_json(fmt.render_response(unified, model=body["model"]))
        unified = fmt.parse_response(rendered)
    return rendered


# -- same format ----------------------------------------------------------------------


@examples
@given(chat_requests())
def test_chat_request_round_trip(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), CHAT, CHAT) == via_json(body)


@examples
@given(anthropic_requests())
def test_anthropic_request_round_trip(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), ANTHROPIC, ANTHROPIC) == via_json(body)


@examples
@given(completions_requests())
def test_completions_request_round_trip(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), COMPLETIONS, COMPLETIONS) == via_json(body)


@examples
@given(chat_responses())
def test_chat_response_round_trip(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), CHAT, CHAT) == via_json(body)


@examples
@given(anthropic_responses())
def test_anthropic_response_round_trip(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), ANTHROPIC, ANTHROPIC) == via_json(body)


@examples
@given(completions_responses())
def test_completions_response_round_trip(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), COMPLETIONS, COMPLETIONS) == via_json(body)


# -- across formats -----------------------------------------------------------------------


@examples
@given(chat_requests(portable=True))
def test_chat_request_through_anthropic(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), CHAT, ANTHROPIC, CHAT) == via_json(body)


@examples
@given(anthropic_requests(portable=True))
def test_anthropic_request_through_chat(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), ANTHROPIC, CHAT, ANTHROPIC) == via_json(body)


@examples
@given(completions_requests())
def test_completions_request_through_chat(body: dict[str, Any]) -> None:
    assert request_trip(via_json(body), COMPLETIONS, CHAT, COMPLETIONS) == via_json(body)


@examples
@given(completions_requests(portable_to_anthropic=True))
def test_completions_request_through_anthropic(body: dict[str, Any]) -> None:
    result = request_trip(via_json(body), COMPLETIONS, ANTHROPIC, COMPLETIONS)
    assert result == via_json(body)


@examples
@given(chat_responses(portable=True))
def test_chat_response_through_anthropic(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), CHAT, ANTHROPIC, CHAT) == via_json(body)


@examples
@given(anthropic_responses(portable=True))
def test_anthropic_response_through_chat(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), ANTHROPIC, CHAT, ANTHROPIC) == via_json(body)


@examples
@given(completions_responses())
def test_completions_response_through_chat(body: dict[str, Any]) -> None:
    assert response_trip(via_json(body), COMPLETIONS, CHAT, COMPLETIONS) == via_json(body)


@examples
@given(completions_responses(portable_to_anthropic=True))
def test_completions_response_through_anthropic(body: dict[str, Any]) -> None:
    result = response_trip(via_json(body), COMPLETIONS, ANTHROPIC, COMPLETIONS)
    assert result == via_json(body)
