"""Golden fixtures: a body in format A, converted, must equal the expected body in format B.

Each file in tests/fixtures/formats/ is modelled on an example from the
providers' published API documentation (its ``source`` field says which) and
was written by hand: ``input`` in format ``from``, ``expected`` in format ``to``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.formats.registry import FORMATS

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def _fixtures() -> list[Any]:
    return [
        pytest.param(json.loads(path.read_text(encoding="utf-8")), id=path.name)
        for path in sorted(FIXTURES.glob("*.json"))
    ]


def _wire(body: dict[str, Any]) -> str:
    """What goes on the wire: the renderer's output must be JSON-serialisable as is."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("fixture", _fixtures())
def test_golden_conversion(fixture: dict[str, Any]) -> None:
    source, target = FORMATS[fixture["from"]], FORMATS[fixture["to"]]
    if fixture["kind"] == "request":
        result = target.render_request(source.parse_request(fixture["input"]))
    else:
        parsed = source.parse_response(fixture["input"])
        result = target.render_response(parsed, model=fixture["client_model"])
    assert result == fixture["expected"]
    assert _wire(result) == _wire(fixture["expected"])


def test_fixture_set_covers_every_direction() -> None:
    seen = {(f.values[0]["kind"], f.values[0]["from"], f.values[0]["to"]) for f in _fixtures()}
    for kind in ("request", "response"):
        assert (kind, "openai-chat", "anthropic-messages") in seen
        assert (kind, "anthropic-messages", "openai-chat") in seen
    assert ("request", "openai-completions", "anthropic-messages") in seen
    assert ("request", "openai-completions", "openai-chat") in seen
    assert ("request", "openai-chat", "openai-completions") in seen
    assert ("response", "anthropic-messages", "openai-completions") in seen
    assert ("response", "openai-completions", "openai-chat") in seen
