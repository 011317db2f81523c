"""What a provider module declares about its upstream family.

Theory of operation: a ``Provider`` is data plus a few small functions. The
pipeline asks it which wire format it speaks for an operation, where to send
the request, which headers authenticate it, and how the request presents
itself (``adjust_headers``: user agent and such, for subscription accounts);
the pipeline itself never tests a provider's name. Adding a provider means
one module and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..config.schema import OAuthSettings, UpstreamAccount

__all__ = ["Operation", "Provider", "UpstreamTarget"]


class Operation(str, Enum):
    """What the client asked for, independent of its format."""

    CHAT = "chat"  # chat completions / messages
    COMPLETIONS = "completions"  # OpenAI legacy text completions
    COUNT_TOKENS = "count_tokens"  # token counting in the client's own format
    RESPONSES = "responses"  # OpenAI Responses: chat where the provider has no Responses API
    MODELS = "models"  # GET the model list: the active health check's probe


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where one request goes and which headers it carries (auth included)."""

    url: str
    headers: tuple[tuple[str, str], ...]


#: ``(account, operation, body) -> body``: provider-specific edits of the outgoing
#: JSON body; returns the same object when nothing changes
BodyAdjuster = Callable[[UpstreamAccount, "Operation", dict[str, Any]], dict[str, Any]]


def unchanged(
    account: UpstreamAccount, operation: Operation, body: dict[str, Any]
) -> dict[str, Any]:
    return body


#: ``(account, headers, client_headers, oauth_settings) -> headers``: the headers of
#: the outgoing request (the target's, then ``accept``, ``user-agent`` ...) as the
#: provider wants them presented; returns the same list when nothing changes
HeaderAdjuster = Callable[
    [UpstreamAccount, list[tuple[str, str]], Mapping[str, str], OAuthSettings],
    list[tuple[str, str]],
]


def same_headers(
    account: UpstreamAccount,
    headers: list[tuple[str, str]],
    client_headers: Mapping[str, str],
    settings: OAuthSettings,
) -> list[tuple[str, str]]:
    return headers


#: ``(account, credential, operation, upstream_model, client_headers, query, stream) -> target``;
#: ``stream`` says the client asked for a stream (a provider may use another path for it)
TargetBuilder = Callable[
    [UpstreamAccount, str, Operation, str, Mapping[str, str], str, bool], UpstreamTarget
]


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    #: format name (see ``formats.registry``) spoken for each supported operation
    wire_formats: Mapping[Operation, str]
    default_base_url: str | None
    default_models: tuple[str, ...]
    build_target: TargetBuilder
    #: an account must name its base URL (OpenAI-compatible servers)
    requires_base_url: bool = False
    #: the name is reserved: accepted in the schema, not yet served
    reserved: bool = False
    adjust_body: BodyAdjuster = unchanged
    adjust_headers: HeaderAdjuster = same_headers
    #: the version segment a base URL ends with, as the provider's own SDK has
    #: it (OpenAI: "/v1"); the CLI hints when an account's base URL lacks it
    base_url_version: str | None = None
    #: the version segment the request paths start with (Anthropic: "/v1"); the
    #: CLI hints when an account's base URL ends with it already
    path_version: str | None = None

    def base_url(self, account: UpstreamAccount) -> str:
        base = account.base_url or self.default_base_url
        if not base:
            raise ValueError(f"upstream {account.id} has no base URL")
        return base.rstrip("/")
