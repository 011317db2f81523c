"""The azure provider: its two URL styles, the ``api-key`` header, the content
filter's 400 read as a refusal, Azure's error shapes, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import config_file, run_cli

from llm_gateway.config.accounts import AzureSettings, Quirks, UpstreamAccount
from llm_gateway.config.fields import SchemaError
from llm_gateway.config.schema import parse_config
from llm_gateway.config.store import ConfigStore
from llm_gateway.formats.azure_filter import refusal_for_filtered_prompt
from llm_gateway.formats.registry import FORMATS
from llm_gateway.providers.base import Operation
from llm_gateway.providers.registry import get_provider
from llm_gateway.routing.retry_headers import retry_after_from_headers

AZURE = get_provider("azure")
KEY = "0123456789abcdef0123456789abcdef"
BASE = "https://contoso.openai.azure.com"


def account(style: str = "deployments", **fields: object) -> UpstreamAccount:
    base = {"id": "z", "name": "z", "type": "api-key", "provider": "azure", "base_url": BASE}
    settings = AzureSettings(url_style=style)
    return UpstreamAccount(**{**base, "azure": settings, **fields})  # type: ignore[arg-type]


def test_deployment_urls_carry_the_deployment_and_the_api_version() -> None:
    target = AZURE.build_target(account(), KEY, Operation.CHAT, "prod gpt-4o", {}, "x=1", True)
    assert target.url == (
        f"{BASE}/openai/deployments/prod%20gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert ("api-key", KEY) in target.headers
    assert all(name != "authorization" for name, _ in target.headers)
    assert KEY not in target.url
    legacy = AZURE.build_target(account(), KEY, Operation.COMPLETIONS, "davinci", {}, "", False)
    assert legacy.url == f"{BASE}/openai/deployments/davinci/completions?api-version=2024-10-21"
    pinned = account(azure=AzureSettings(api_version="2025-04-01-preview"))
    probe = AZURE.build_target(pinned, KEY, Operation.MODELS, "", {}, "", False)
    assert probe.url == f"{BASE}/openai/models?api-version=2025-04-01-preview"


def test_v1_urls_have_no_deployment_and_no_api_version() -> None:
    target = AZURE.build_target(account("v1"), KEY, Operation.CHAT, "prod-gpt4o", {}, "", False)
    assert target.url == f"{BASE}/openai/v1/chat/completions"
    probe = AZURE.build_target(account("v1"), KEY, Operation.MODELS, "", {}, "", False)
    assert probe.url == f"{BASE}/openai/v1/models"


@pytest.mark.parametrize("suffix", ["", "/", "/openai", "/openai/v1/"])
def test_a_base_url_with_azure_path_prefixes_is_the_same_endpoint(suffix: str) -> None:
    given = account("v1", base_url=BASE + suffix, quirks=Quirks(extra_headers=(("x-t", "a"),)))
    target = AZURE.build_target(given, KEY, Operation.CHAT, "d", {}, "", False)
    assert target.url == f"{BASE}/openai/v1/chat/completions"
    assert ("x-t", "a") in target.headers


def test_the_provider_speaks_openai_lists_no_models_and_needs_a_base_url() -> None:
    assert AZURE.wire_formats == {
        Operation.CHAT: "openai-chat",
        Operation.COMPLETIONS: "openai-completions",
    }
    assert AZURE.requires_base_url and not AZURE.lists_models and not AZURE.reserved
    assert AZURE.default_models == ()


def _filtered_body() -> bytes:
    return json.dumps(
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering ...",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": {"filtered": True, "severity": "high"},
                        "sexual": {"filtered": False, "severity": "safe"},
                        "jailbreak": {"filtered": True, "detected": True},
                    },
                },
            }
        }
    ).encode()


def test_a_blocked_prompt_reads_as_a_refusal_answer_in_each_openai_format() -> None:
    chat = AZURE.error_as_answer("openai-chat", 400, _filtered_body())
    assert chat is not None
    unified = FORMATS["openai-chat"].parse_response(chat)
    assert unified.stop_reason is not None and unified.stop_reason.value == "refusal"
    refusal = chat["choices"][0]["message"]["refusal"]
    assert refusal == (
        "The request was blocked by the upstream's content filter: hate (high), jailbreak."
    )
    legacy = refusal_for_filtered_prompt("openai-completions", 400, _filtered_body())
    assert legacy is not None and legacy["choices"][0]["finish_reason"] == "content_filter"
    assert FORMATS["openai-completions"].parse_response(legacy).stop_reason == (unified.stop_reason)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, _filtered_body()),
        (400, b'{"error": {"code": "invalid_request", "message": "bad"}}'),
        (400, b"not json"),
        (400, b'{"error": "content_filter"}'),
    ],
)
def test_other_errors_stay_errors(status: int, body: bytes) -> None:
    assert AZURE.error_as_answer("openai-chat", status, body) is None
    assert get_provider("openai").error_as_answer("openai-chat", 400, _filtered_body()) is None


def test_azure_error_shapes_keep_their_messages() -> None:
    parse = FORMATS["openai-chat"].parse_error
    gateway = b'{"statusCode": 401, "message": "Access denied due to invalid subscription key."}'
    assert parse(401, gateway) == (
        "authentication_error",
        "Access denied due to invalid subscription key.",
    )
    limited = b'{"error": {"code": "429", "message": "Rate limit is exceeded. Try again."}}'
    assert parse(429, limited)[1] == "Rate limit is exceeded. Try again."


def test_retry_after_ms_is_read_first() -> None:
    headers = [("retry-after-ms", "1500"), ("retry-after", "2")]
    assert retry_after_from_headers(headers, 0.0) == 1.5


def test_schema_validates_the_azure_section() -> None:
    entry = {"id": "z", "name": "z", "type": "api-key", "provider": "azure", "base_url": BASE}
    parsed = parse_config({"upstream_accounts": [{**entry, "azure": {"url_style": "v1"}}]})
    assert parsed.upstream_accounts[0].azure == AzureSettings(url_style="v1")
    with pytest.raises(SchemaError) as caught:
        parse_config({"upstream_accounts": [{**entry, "azure": {"url_style": "v2"}}]})
    assert caught.value.path == "upstream_accounts[0].azure.url_style"
    with pytest.raises(SchemaError) as caught:
        parse_config({"upstream_accounts": [{**entry, "azure": {"api_version": "a b?"}}]})
    assert caught.value.path == "upstream_accounts[0].azure.api_version"


# --- the CLI ----------------------------------------------------------------------------


def _add(*extra: str) -> list[str]:
    base = ["upstream", "add", "--type", "api-key", "--provider", "azure", "--name", "az"]
    return [*base, "--key", KEY, *extra]


def test_upstream_add_provider_azure(home: Path) -> None:
    result = run_cli(
        *_add("--base-url", BASE, "--models", "prod-gpt4o", "--azure-style", "v1", "--json")
    )
    assert result.code == 0, result.output
    assert KEY not in result.output
    assert result.json()["azure"] == {"url_style": "v1"}
    (stored,) = ConfigStore(config_file(home)).load(create=False).upstream_accounts
    assert (stored.provider, stored.models) == ("azure", ("prod-gpt4o",))
    assert stored.azure == AzureSettings(url_style="v1")
    updated = run_cli("upstream", "update", stored.id, "--api-version", "2025-04-01-preview")
    assert updated.code == 0, updated.output
    (stored,) = ConfigStore(config_file(home)).load(create=False).upstream_accounts
    assert stored.azure == AzureSettings(url_style="v1", api_version="2025-04-01-preview")
    listing = run_cli("upstream", "list")
    assert "azure" in listing.out and KEY not in listing.output


def test_upstream_add_azure_needs_a_base_url_and_model_names(home: Path) -> None:
    no_base = run_cli(*_add("--models", "prod-gpt4o"))
    assert no_base.code == 1 and no_base.err == "error: provider 'azure' needs --base-url\n"
    no_models = run_cli(*_add("--base-url", BASE))
    assert no_models.code == 1
    assert "--models" in no_models.err and "--model-map" in no_models.err
    assert KEY not in no_base.output + no_models.output
    assert ConfigStore(config_file(home)).load(create=False).upstream_accounts == ()


def test_azure_settings_are_refused_for_other_providers(home: Path) -> None:
    result = run_cli(
        "upstream", "add", "--type", "api-key", "--provider", "openai", "--name", "o",
        "--key", "sk-" + "x" * 30, "--azure-style", "v1",
    )  # fmt: skip
    assert result.code == 1
    assert result.err == "error: --azure-style and --api-version apply to provider 'azure' only\n"


def test_glob_only_azure_accounts_are_never_asked_for_their_model_list() -> None:
    from llm_gateway.config.schema import Config
    from llm_gateway.pipeline.catalog import listed_accounts

    globbed = account(models=("prod-*",), api_key="x")
    openai = UpstreamAccount(
        id="o", name="o", type="api-key", provider="openai", api_key="x", models=("gpt-*",)
    )
    config = Config(upstream_accounts=(globbed, openai))
    assert [a.id for a in listed_accounts(config)] == ["o"]
