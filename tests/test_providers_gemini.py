"""The gemini provider: where requests go, how they authenticate, and the CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import config_file, run_cli

from llm_gateway.config.schema import Quirks, UpstreamAccount
from llm_gateway.config.store import ConfigStore
from llm_gateway.providers.base import Operation
from llm_gateway.providers.registry import get_provider

GEMINI = get_provider("gemini")
KEY = "AIzaSyTestKeyForTheProviderTests012345"


def account(**fields: object) -> UpstreamAccount:
    base = {"id": "g", "name": "g", "type": "api-key", "provider": "gemini"}
    return UpstreamAccount(**{**base, **fields})  # type: ignore[arg-type]


def test_json_and_stream_paths_carry_the_model_and_the_key_only_in_a_header() -> None:
    plain = GEMINI.build_target(
        account(), KEY, Operation.CHAT, "gemini-2.5-flash", {}, "key=client-key", False
    )
    assert plain.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert ("x-goog-api-key", KEY) in plain.headers
    assert "client-key" not in plain.url
    stream = GEMINI.build_target(account(), KEY, Operation.CHAT, "gemini-2.5-flash", {}, "", True)
    assert stream.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert KEY not in plain.url + stream.url


def test_base_url_models_prefix_quoting_and_extra_headers() -> None:
    proxied = account(
        base_url="https://proxy.example/gemini/v1beta/",
        quirks=Quirks(extra_headers=(("x-team", "a"),)),
    )
    target = GEMINI.build_target(proxied, KEY, Operation.CHAT, "models/tuned x", {}, "", False)
    assert target.url == "https://proxy.example/gemini/v1beta/models/tuned%20x:generateContent"
    assert ("x-team", "a") in target.headers
    probe = GEMINI.build_target(proxied, KEY, Operation.MODELS, "", {}, "", False)
    assert probe.url == "https://proxy.example/gemini/v1beta/models"


def test_completions_from_legacy_clients_go_to_generate_content() -> None:
    assert GEMINI.wire_formats == {Operation.CHAT: "gemini-generate-content"}
    assert not GEMINI.reserved


def test_upstream_add_provider_gemini(home: Path) -> None:
    result = run_cli(
        "upstream", "add", "--type", "api-key", "--provider", "gemini", "--name", "google",
        "--key", KEY, "--json",
    )  # fmt: skip
    assert result.code == 0, result.output
    assert KEY not in result.output
    stored = ConfigStore(config_file(home)).load(create=False).upstream_accounts
    assert [(a.provider, a.name) for a in stored] == [("gemini", "google")]
    listing = run_cli("upstream", "list")
    assert "gemini" in listing.out and KEY not in listing.output
