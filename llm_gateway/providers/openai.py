"""OpenAI and every server that speaks its wire format.

``POST {base}/chat/completions`` and ``{base}/completions`` with
``Authorization: Bearer``; token counts from ``{base}/responses/input_tokens``
(OpenAI itself only: compatible servers have no such counter). Base URLs include the version prefix, as in the
OpenAI SDK (``https://api.openai.com/v1``). ``openai-compatible`` accounts
(Qwen, DeepSeek, vLLM, Ollama, OpenRouter, ...) reuse this module and must name
their base URL; their differences are per-account quirk settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config.accounts import UpstreamAccount
from ..formats.token_counts import openai_input_tokens_request, read_openai_input_tokens
from .base import Operation, Provider, TokenCounter, UpstreamTarget

__all__ = ["COMPATIBLE", "PROVIDER"]

_PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETIONS: "/completions",
    Operation.MODELS: "/models",
    Operation.RESPONSES: "/responses",
    Operation.COUNT_TOKENS: "/responses/input_tokens",
}


def _target(
    account: UpstreamAccount,
    credential: str,
    operation: Operation,
    upstream_model: str,
    client_headers: Mapping[str, str],
    query: str,
    stream: bool,
) -> UpstreamTarget:
    provider = COMPATIBLE if account.provider == COMPATIBLE.name else PROVIDER
    url = provider.base_url(account) + _PATHS[operation]
    headers = [("content-type", "application/json")]
    if credential:
        headers.append(("authorization", f"Bearer {credential}"))
    headers.extend(account.quirks.extra_headers)
    return UpstreamTarget(url=url, headers=tuple(headers))


_WIRE = {Operation.CHAT: "openai-chat", Operation.COMPLETIONS: "openai-completions"}
#: OpenAI itself also serves the Responses API (and counts its input tokens);
#: compatible servers may not, so their Responses clients are converted to chat
_OPENAI_WIRE = {
    **_WIRE,
    Operation.RESPONSES: "openai-responses",
}

#: an account may say which API serves its chat turns (``--wire``, ``responses_models``):
#: Responses-only models, or servers that speak the Responses API too
_DECLARABLE = {
    "chat": (Operation.CHAT, "openai-chat"),
    "responses": (Operation.RESPONSES, "openai-responses"),
}

PROVIDER = Provider(
    name="openai",
    wire_formats=_OPENAI_WIRE,
    default_base_url="https://api.openai.com/v1",
    default_models=("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "text-*", "davinci-*", "babbage-*"),
    build_target=_target,
    token_counter=TokenCounter(
        "openai-responses", openai_input_tokens_request, read_openai_input_tokens
    ),
    base_url_version="/v1",
    declarable_wires=_DECLARABLE,
)

#: no default models: which models a compatible server has is the account's to
#: say (a catch-all would take a share of every other provider's traffic)
COMPATIBLE = Provider(
    name="openai-compatible",
    wire_formats=_WIRE,
    default_base_url=None,
    default_models=(),
    build_target=_target,
    requires_base_url=True,
    base_url_version="/v1",
    declarable_wires=_DECLARABLE,
)
