"""Azure OpenAI (and Azure AI Foundry): OpenAI's wire format at Azure's addresses.

The base URL is the resource's endpoint (``https://RESOURCE.openai.azure.com``
or ``https://RESOURCE.services.ai.azure.com``; a trailing ``/openai`` or
``/openai/v1`` is tolerated). The key goes in the ``api-key`` header. An
account's ``azure.url_style`` picks one of Azure's two URL styles:

* ``deployments``: ``{base}/openai/deployments/{deployment}/chat/completions
  ?api-version={azure.api_version}``; the deployment is the upstream model name
  (after ``model_map``), quoted;
* ``v1``: ``{base}/openai/v1/chat/completions``, the deployment named by the
  body's ``model``, no api-version.

An account may declare that its chat turns go to Azure's Responses API
(``--wire responses``, or ``responses_models`` for some deployments): that
API exists only on the v1 surface, so either style then posts to
``{base}/openai/v1/responses`` with the deployment as the body's ``model``
and no api-version (kept responses are read and deleted at
``/openai/v1/responses/{id}``).

Bodies, answers and streams are OpenAI's (``openai-chat``,
``openai-completions``); Azure's additions (``prompt_filter_results``, a
first stream chunk with no choices, ``content_filter_results``) are read as
OpenAI's codecs read any unknown field. What Azure does differently from
OpenAI is declared here: a prompt its content filter blocks is a 400 with
``code: content_filter`` (``error_as_answer`` turns it into the refusal
answer the client sees), and its deployments cannot be listed with a key
(``lists_models`` is off: ``/v1/models`` shows the names configured).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..config.schema import UpstreamAccount
from ..formats.azure_filter import refusal_for_filtered_prompt
from .base import Operation, Provider, UpstreamTarget

__all__ = ["PROVIDER"]

_PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETIONS: "/completions",
    Operation.MODELS: "/models",
    Operation.RESPONSES: "/responses",
}
_WIRE = {Operation.CHAT: "openai-chat", Operation.COMPLETIONS: "openai-completions"}
#: which API serves an account's chat turns (``--wire``, ``responses_models``)
_DECLARABLE = {
    "chat": (Operation.CHAT, "openai-chat"),
    "responses": (Operation.RESPONSES, "openai-responses"),
}


def endpoint(account: UpstreamAccount) -> str:
    """The resource's endpoint: the base URL without Azure's path prefixes."""
    base = PROVIDER.base_url(account)
    for suffix in ("/openai/v1", "/openai"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _target(
    account: UpstreamAccount,
    credential: str,
    operation: Operation,
    upstream_model: str,
    client_headers: Mapping[str, str],
    query: str,
    stream: bool,
) -> UpstreamTarget:
    settings = account.azure
    root = endpoint(account) + "/openai"
    if settings.url_style == "v1" or operation is Operation.RESPONSES:
        url = root + "/v1" + _PATHS[operation]
    else:
        version = "?api-version=" + quote(settings.api_version, safe="")
        if operation is Operation.MODELS:
            url = root + _PATHS[operation] + version
        else:
            deployment = quote(upstream_model, safe="-._~")
            url = f"{root}/deployments/{deployment}{_PATHS[operation]}{version}"
    headers = [("content-type", "application/json")]
    if credential:
        headers.append(("api-key", credential))
    headers.extend(account.quirks.extra_headers)
    return UpstreamTarget(url=url, headers=tuple(headers))


def _filtered(upstream_format: str, status: int, body: bytes) -> dict[str, Any] | None:
    return refusal_for_filtered_prompt(upstream_format, status, body)


PROVIDER = Provider(
    name="azure",
    wire_formats=_WIRE,
    default_base_url=None,
    default_models=(),
    build_target=_target,
    requires_base_url=True,
    lists_models=False,
    error_as_answer=_filtered,
    declarable_wires=_DECLARABLE,
)
