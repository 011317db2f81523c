"""``server.paths.PathPattern``: the variable segment of a route path."""

from __future__ import annotations

import pytest

from llm_gateway.server.paths import PathPattern

GENERATE = PathPattern.parse("/v1beta/models/{model}:generateContent")


def test_a_template_splits_at_its_placeholder() -> None:
    assert PathPattern("/v1beta/models/", "model", ":generateContent") == GENERATE
    assert GENERATE.template == "/v1beta/models/{model}:generateContent"
    assert PathPattern.parse("/v1beta/models/{model}").suffix == ""


@pytest.mark.parametrize("template", ["/v1beta/models", "/a/{x}/{y}", "/a/{}", "/a/{x"])
def test_a_template_needs_exactly_one_named_placeholder(template: str) -> None:
    with pytest.raises(ValueError):
        PathPattern.parse(template)


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash"),
        ("/v1beta/models/my%20model:generateContent", "my model"),
        ("/v1beta/models/models%2Fgemini-2.5-pro:generateContent", "models/gemini-2.5-pro"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", None),
        ("/v1beta/models/:generateContent", None),
        ("/v1beta/models/a/b:generateContent", None),
        ("/v1beta/models/a:b:generateContent", None),
        ("/v1/models/gpt-4o:generateContent", None),
        ("/v1beta/models:generateContent", None),
    ],
)
def test_match_returns_the_decoded_segment_or_none(path: str, model: str | None) -> None:
    assert GENERATE.match(path) == model


def test_a_pattern_without_a_suffix_takes_no_method_suffix() -> None:
    one = PathPattern.parse("/v1beta/models/{model}")
    assert one.match("/v1beta/models/gemini-2.5-flash") == "gemini-2.5-flash"
    assert one.match("/v1beta/models/gemini-2.5-flash:generateContent") is None
    assert one.match("/v1beta/models") is None
