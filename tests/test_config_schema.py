"""The configuration schema: what a valid file means, and how a bad one is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llm_gateway.config.accounts import PROVIDERS, OAuthState, Quirks, UpstreamAccount
from llm_gateway.config.fields import SchemaError
from llm_gateway.config.network import ServerConfig
from llm_gateway.config.schema import Config, GatewayKey, default_document, parse_config


def account(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "up-1",
        "name": "work",
        "type": "api-key",
        "provider": "anthropic",
        "api_key": "enc:v1:xyz",
    }
    entry.update(fields)
    return entry


def gateway_key(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": "0a1b2c3d", "name": "ci", "hash": "sha256:00"}
    entry.update(fields)
    return entry


def error_of(document: object) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        parse_config(document)
    return caught.value


def test_default_document_is_valid_and_equals_the_dataclass_defaults() -> None:
    assert parse_config(default_document()) == Config()


def test_default_document_is_a_fresh_copy_each_time() -> None:
    first = default_document()
    first["server"]["port"] = 1
    first["gateway_keys"].append(gateway_key())
    assert default_document()["server"]["port"] == 3847
    assert default_document()["gateway_keys"] == []


@pytest.mark.parametrize("document", [None, {}], ids=["empty-file", "empty-mapping"])
def test_an_empty_configuration_means_all_defaults(document: object) -> None:
    assert parse_config(document) == Config()


def test_every_section_is_read() -> None:
    document = default_document()
    document["server"].update(
        host="127.0.0.1",
        port=9000,
        header_timeout=2,
        cors_origins=["http://localhost:3000"],
    )
    document["proxy"]["connect_timeout"] = 1.5
    document["logging"] = {"level": "DEBUG", "format": "text"}
    document["environment"]["https_proxy"] = "http://proxy:3128"
    document["gateway_keys"] = [
        gateway_key(permissions=["read"], models=["gpt-*"], rpm=60, enabled=False)
    ]
    document["upstream_accounts"] = [
        account(
            provider="openai-compatible",
            base_url="http://127.0.0.1:8000/v1",
            models=["llama-*"],
            model_map={"gpt-4o": "llama-3"},
            priority=-2,
            weight=5,
            verify_tls=False,
            quirks={"developer_role": False, "extra_headers": {"x-org": "a"}},
        ),
        account(id="up-2", type="oauth", api_key=None, oauth={"needs_reauth": True}),
    ]
    config = parse_config(document)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9000
    assert config.server.header_timeout == 2.0
    assert isinstance(config.server.header_timeout, float)
    assert config.server.cors_origins == ("http://localhost:3000",)
    assert config.proxy.connect_timeout == 1.5
    assert config.logging.level == "debug"  # case-insensitive, normalised
    assert config.logging.format == "text"
    assert config.environment.https_proxy == "http://proxy:3128"
    assert config.environment.http_proxy is None
    assert config.gateway_keys == (
        GatewayKey(
            id="0a1b2c3d",
            name="ci",
            hash="sha256:00",
            permissions=("read",),
            enabled=False,
            models=("gpt-*",),
            rpm=60,
        ),
    )
    first, second = config.upstream_accounts
    assert first.models == ("llama-*",)
    assert first.model_map == (("gpt-4o", "llama-3"),)
    assert (first.priority, first.weight, first.verify_tls) == (-2, 5, False)
    assert first.quirks == Quirks(developer_role=False, extra_headers=(("x-org", "a"),))
    assert second.type == "oauth" and second.api_key is None
    assert second.oauth == OAuthState(needs_reauth=True)
    assert config.account_by_id("up-2") is second
    assert config.account_by_id("nope") is None
    assert config.key_by_id("0a1b2c3d") is config.gateway_keys[0]
    assert config.key_by_id("ffffffff") is None


def test_model_map_renames_only_mapped_models() -> None:
    acct = UpstreamAccount(
        id="a", name="a", type="api-key", provider="openai", model_map=(("fast", "gpt-4o-mini"),)
    )
    assert acct.upstream_model("fast") == "gpt-4o-mini"
    assert acct.upstream_model("gpt-4o") == "gpt-4o"


def test_reserved_providers_are_accepted_by_the_schema() -> None:
    for provider in PROVIDERS:
        config = parse_config({"upstream_accounts": [account(provider=provider)]})
        assert config.upstream_accounts[0].provider == provider


def test_parsed_config_is_immutable() -> None:
    config = parse_config(default_document())
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d["server"].update(port="abc"), "server.port", "must be a whole number"),
        (lambda d: d["server"].update(port=True), "server.port", "must be a whole number"),
        (lambda d: d["server"].update(port=70000), "server.port", "at most 65535"),
        (lambda d: d["server"].update(port=-1), "server.port", "at least 0"),
        (lambda d: d["server"].update(max_header_bytes=10), "server.max_header_bytes", "1024"),
        (lambda d: d["server"].update(header_timeout=0), "server.header_timeout", "greater than 0"),
        (lambda d: d["server"].update(header_timeout="5s"), "server.header_timeout", "seconds"),
        (lambda d: d["server"].update(cors_origins="*"), "server.cors_origins", "must be a list"),
        (lambda d: d["server"].update(cors_origins=[1]), "server.cors_origins[0]", "string"),
        (lambda d: d["server"].update(bogus=1), "server.bogus", "unknown setting"),
        (lambda d: d.update(server=[1]), "server", "must be a mapping"),
        (lambda d: d.update(bogus=1), "bogus", "unknown setting"),
        (lambda d: d["proxy"].update(max_response_bytes=0), "proxy.max_response_bytes", "least 1"),
        (
            lambda d: d["routing"].update(open_base=600),  # the breaker could not be built
            "routing.open_base",
            "must not be greater than routing.open_max",
        ),
        (
            lambda d: d["routing"].update(rate_limit_default=900),
            "routing.rate_limit_default",
            "must not be greater than routing.rate_limit_max",
        ),
        (lambda d: d["logging"].update(level="loud"), "logging.level", "must be one of"),
        (lambda d: d["logging"].update(format="xml"), "logging.format", "json, text"),
        (lambda d: d["environment"].update(http_proxy=3), "environment.http_proxy", "string"),
        (lambda d: d.update(gateway_keys={}), "gateway_keys", "must be a list"),
        (
            lambda d: d.update(gateway_keys=[gateway_key(permissions=["root"])]),
            "gateway_keys[0].permissions[0]",
            "must be one of read, write, admin",
        ),
        (
            lambda d: d.update(gateway_keys=[gateway_key(), {"id": "x", "name": "y"}]),
            "gateway_keys[1].hash",
            "is required",
        ),
        (
            lambda d: d.update(gateway_keys=[gateway_key(rpm=0)]),
            "gateway_keys[0].rpm",
            "at least 1",
        ),
        (
            lambda d: d.update(gateway_keys=[gateway_key(), gateway_key()]),
            "gateway_keys[1].id",
            "duplicate id",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(provider="foo")]),
            "upstream_accounts[0].provider",
            "got 'foo'",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(type="password")]),
            "upstream_accounts[0].type",
            "must be one of api-key, oauth",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(weight=0)]),
            "upstream_accounts[0].weight",
            "at least 1",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(enabled="yes")]),
            "upstream_accounts[0].enabled",
            "true or false",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(model_map=["a=b"])]),
            "upstream_accounts[0].model_map",
            "must be a mapping",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(quirks={"turbo": True})]),
            "upstream_accounts[0].quirks.turbo",
            "unknown setting",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(oauth={"expires_at": "soon"})]),
            "upstream_accounts[0].oauth.expires_at",
            "must be a number",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(), account(id="up-2"), account()]),
            "upstream_accounts[2].id",
            "duplicate id 'up-1'",
        ),
        (
            lambda d: d.update(upstream_accounts=[account(apikey="sk-typo")]),
            "upstream_accounts[0].apikey",
            "unknown setting",
        ),
    ],
)
def test_invalid_values_name_the_field(change: Any, path: str, message: str) -> None:
    document = default_document()
    change(document)
    error = error_of(document)
    assert error.path == path
    assert message in error.detail
    assert str(error).startswith(f"{path}: ")


def test_top_level_must_be_a_mapping() -> None:
    error = error_of(["server"])
    assert "must be a mapping" in str(error)


def test_null_sections_and_fields_take_their_defaults() -> None:
    config = parse_config({"server": None, "proxy": {"connect_timeout": None}, "logging": None})
    assert config.server == ServerConfig()
    assert config.proxy.connect_timeout == 10.0


def test_validation_does_not_modify_the_document() -> None:
    document = default_document()
    document["upstream_accounts"] = [account(model_map={"a": "b"})]
    before = copy.deepcopy(document)
    parse_config(document)
    assert document == before


@settings(max_examples=60, deadline=None)
@given(port=st.integers(min_value=-100_000, max_value=200_000))
def test_ports_are_accepted_exactly_in_range(port: int) -> None:
    document = {"server": {"port": port}}
    if 0 <= port <= 65535:
        assert parse_config(document).server.port == port
    else:
        assert error_of(document).path == "server.port"


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(
        alphabet=st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="_"),
        min_size=1,
        max_size=20,
    )
)
def test_any_unknown_server_setting_is_refused_by_name(name: str) -> None:
    assume(name not in ServerConfig.__dataclass_fields__)
    error = error_of({"server": {name: 1}})
    assert error.path == f"server.{name}"
    assert error.detail == "unknown setting"
