"""The gemini provider: where requests go, how they authenticate, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


# --- a key Gemini calls invalid ---------------------------------------------------------


def _google_error(status: int, code: str, reason: str | None) -> bytes:
    error: dict[str, object] = {"code": status, "message": "API key not valid.", "status": code}
    if reason is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (400, _google_error(400, "INVALID_ARGUMENT", "API_KEY_INVALID"), True),
        (400, _google_error(400, "INVALID_ARGUMENT", None), False),  # a bad request
        (400, _google_error(400, "INVALID_ARGUMENT", "FIELD_INVALID"), False),
        (429, _google_error(429, "RESOURCE_EXHAUSTED", "API_KEY_INVALID"), False),
        (400, b"API_KEY_INVALID but not JSON", False),
        (400, b'{"error": {"details": "API_KEY_INVALID"}}', False),
    ],
)
def test_a_400_naming_the_key_invalid_is_a_refused_credential(
    status: int, body: bytes, refused: bool
) -> None:
    from llm_gateway.pipeline.outcomes import Outcome, classify_answer

    assert GEMINI.refuses_credentials(status, body) is refused
    outcome = classify_answer(GEMINI, status, body)
    assert (outcome is Outcome.AUTH_FAILED) is refused
