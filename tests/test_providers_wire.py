"""Which API an account's chat turns use: the provider's own, or the one it declares.

``UpstreamAccount.wire`` (``chat``/``responses``) and ``responses_models``
(globs of upstream models) are read by ``Provider.upstream_operation``; a
provider that serves one API only ignores them.
"""

from __future__ import annotations

import pytest
from test_config_schema import account, error_of

from llm_gateway.config.accounts import UpstreamAccount
from llm_gateway.config.schema import parse_config
from llm_gateway.providers.base import Operation
from llm_gateway.providers.registry import get_provider

OPENAI = get_provider("openai")


def openai_account(**fields: object) -> UpstreamAccount:
    config = parse_config({"upstream_accounts": [account(**{"provider": "openai", **fields})]})
    return config.upstream_accounts[0]


def test_the_schema_reads_and_checks_the_declared_wire() -> None:
    declared = openai_account(wire="responses", responses_models=["gpt-5*-pro"])
    assert declared.wire == "responses" and declared.responses_models == ("gpt-5*-pro",)
    assert openai_account().wire is None
    assert "wire" in str(error_of({"upstream_accounts": [account(wire="soap")]}))


@pytest.mark.parametrize(
    ("fields", "model", "operation", "expected"),
    [
        ({}, "gpt-4o", Operation.CHAT, (Operation.CHAT, "openai-chat")),
        ({}, "gpt-4o", Operation.RESPONSES, (Operation.RESPONSES, "openai-responses")),
        ({"wire": "responses"}, "gpt-4o", Operation.CHAT, (Operation.RESPONSES, "openai-responses")),
        ({"wire": "chat"}, "gpt-4o", Operation.RESPONSES, (Operation.CHAT, "openai-chat")),
        ({"responses_models": ["gpt-5*-pro"]}, "gpt-5.1-pro", Operation.CHAT,
         (Operation.RESPONSES, "openai-responses")),
        ({"responses_models": ["gpt-5*-pro"]}, "gpt-5.1", Operation.CHAT,
         (Operation.CHAT, "openai-chat")),
        ({"wire": "responses"}, "text-davinci", Operation.COMPLETIONS,
         (Operation.COMPLETIONS, "openai-completions")),
    ],
)  # fmt: skip
def test_openai_accounts_use_the_declared_api(
    fields: dict[str, object], model: str, operation: Operation, expected: tuple[Operation, str]
) -> None:
    assert OPENAI.upstream_operation(openai_account(**fields), operation, model) == expected


def test_openai_counts_tokens_with_responses_input_tokens_whatever_the_wire() -> None:
    # token counts are the provider's counter's, not a wire the account declares
    assert OPENAI.token_counter is not None
    assert OPENAI.token_counter.wire_format == "openai-responses"


def test_compatible_servers_may_declare_responses_too() -> None:
    compatible = get_provider("openai-compatible")
    plain = openai_account(provider="openai-compatible", base_url="http://127.0.0.1:1/v1")
    assert compatible.upstream_operation(plain, Operation.RESPONSES, "m") == (
        Operation.RESPONSES,
        None,
    )
    declared = openai_account(
        provider="openai-compatible", base_url="http://127.0.0.1:1/v1", wire="responses"
    )
    assert compatible.upstream_operation(declared, Operation.CHAT, "m") == (
        Operation.RESPONSES,
        "openai-responses",
    )


def test_a_provider_with_one_api_ignores_a_declared_wire() -> None:
    anthropic = get_provider("anthropic")
    declared = openai_account(provider="anthropic", wire="responses")
    assert anthropic.upstream_operation(declared, Operation.CHAT, "claude-x") == (
        Operation.CHAT,
        "anthropic-messages",
    )
