"""Model name tables: exact names before globs, aliases and fallbacks."""

from __future__ import annotations

import pytest

from llm_gateway.config.accounts import UpstreamAccount
from llm_gateway.config.fields import SchemaError
from llm_gateway.config.schema import parse_config
from llm_gateway.pipeline.quirks import cap_output_tokens
from llm_gateway.routing.models import is_glob, lookup, route_models


def test_exact_names_win_over_globs_and_the_first_glob_wins() -> None:
    table = [("claude-*", "qwen2.5"), ("claude-opus-*", "qwen-max"), ("claude-opus-4-1", "big")]
    assert lookup(table, "claude-opus-4-1") == "big"
    assert lookup(table, "claude-opus-4-5") == "qwen2.5"  # written first
    assert lookup(table, "gpt-4o") is None
    assert is_glob("claude-*") and is_glob("o[13]") and not is_glob("claude-sonnet-4-5")


def test_a_model_map_accepts_globs() -> None:
    account = UpstreamAccount(
        id="a", name="a", type="api-key", provider="openai",
        model_map=(("claude-*", "qwen2.5"), ("claude-opus-4-1", "qwen-max")),
    )  # fmt: skip
    assert account.upstream_model("claude-haiku-4-5-20251001") == "qwen2.5"
    assert account.upstream_model("claude-opus-4-1") == "qwen-max"
    assert account.upstream_model("gpt-4o") == "gpt-4o"
    assert account.maps("claude-x") and not account.maps("gpt-4o")


def test_route_models_aliases_then_fallbacks_without_repeats() -> None:
    aliases = [("opus", "claude-opus-4-1"), ("sonnet", "claude-sonnet-4-5")]
    fallbacks = [("claude-opus-*", ("sonnet", "claude-opus-4-1", "qwen2.5"))]
    assert route_models(aliases, fallbacks, "opus") == (
        "claude-opus-4-1",
        "claude-sonnet-4-5",
        "qwen2.5",
    )
    assert route_models(aliases, fallbacks, "gpt-4o") == ("gpt-4o",)


def test_the_config_takes_aliases_fallbacks_and_an_output_cap() -> None:
    config = parse_config(
        {
            "model_aliases": {"sonnet": "claude-sonnet-4-5", "claude-haiku-*": "qwen2.5"},
            "fallbacks": {"claude-opus-4-1": ["claude-sonnet-4-5"], "o3": "o4-mini"},
            "upstream_accounts": [
                {"id": "a", "name": "a", "type": "api-key", "provider": "openai",
                 "model_map": {"claude-*": "qwen2.5"}, "max_output_tokens": 4096},
            ],
        }
    )  # fmt: skip
    assert config.model_aliases == (("sonnet", "claude-sonnet-4-5"), ("claude-haiku-*", "qwen2.5"))
    assert config.fallbacks == (("claude-opus-4-1", ("claude-sonnet-4-5",)), ("o3", ("o4-mini",)))
    assert config.upstream_accounts[0].max_output_tokens == 4096


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"model_aliases": {"x": "claude-*"}}, "model_aliases.x"),
        ({"model_aliases": ["x"]}, "model_aliases"),
        ({"fallbacks": {"x": ["y*"]}}, "fallbacks.x"),
        ({"fallbacks": {"x": 3}}, "fallbacks.x"),
        ({"routing": {"credential_retry_base": 10, "credential_retry_max": 5}},
         "routing.credential_retry_base"),
    ],
)  # fmt: skip
def test_a_pattern_where_a_model_name_belongs_is_refused(document: object, path: str) -> None:
    with pytest.raises(SchemaError) as raised:
        parse_config(document)
    assert raised.value.path == path


def test_cap_output_tokens_lowers_only_what_is_above_the_cap() -> None:
    body = {"max_tokens": 32000, "thinking": {"type": "enabled", "budget_tokens": 16000}}
    assert cap_output_tokens(body, 8192) == {
        "max_tokens": 8192,
        "thinking": {"type": "enabled", "budget_tokens": 8191},
    }
    small = {"max_completion_tokens": 100}
    assert cap_output_tokens(small, 8192) is small  # untouched: passthrough stays byte-equal
    assert cap_output_tokens({"max_output_tokens": 9000}, 8192) == {"max_output_tokens": 8192}
