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
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..config.schema import OAuthSettings, UpstreamAccount

__all__ = ["Operation", "Provider", "TokenCounter", "UpstreamTarget"]


class Operation(str, Enum):
    """What the client asked for, independent of its format."""

    CHAT = "chat"  # chat completions / messages
    COMPLETIONS = "completions"  # OpenAI legacy text completions
    COUNT_TOKENS = "count_tokens"  # token counting in the client's own format
    RESPONSES = "responses"  # OpenAI Responses: chat where the provider has no Responses API
    MODELS = "models"  # GET the model list: the active health check's probe


#: operations an account's declared wire applies to: requests for one chat turn
_CHAT_LIKE = frozenset({Operation.CHAT, Operation.RESPONSES})


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


#: ``(upstream_format, status, body) -> answer``: an upstream error the provider
#: knows to mean an answer (Azure's content filter blocking a prompt is the model
#: refusing), as a successful body in ``upstream_format``; None for a plain error
ErrorAnswer = Callable[[str, int, bytes], "dict[str, Any] | None"]


def no_answer(upstream_format: str, status: int, body: bytes) -> dict[str, Any] | None:
    return None


#: ``(status, body) -> bool``: an upstream error the provider knows to mean its
#: credential was refused although the status does not say so (Gemini answers
#: a bad key with 400 ``API_KEY_INVALID``); 401 and 403 need no such reading
CredentialRefusal = Callable[[int, bytes], bool]


def no_refusal(status: int, body: bytes) -> bool:
    return False


#: ``(account, credential, operation, upstream_model, client_headers, query, stream) -> target``;
#: ``stream`` says the client asked for a stream (a provider may use another path for it)
TargetBuilder = Callable[
    [UpstreamAccount, str, Operation, str, Mapping[str, str], str, bool], UpstreamTarget
]


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """The upstream's own token counter, asked with ``Operation.COUNT_TOKENS`` at
    the provider's target: the request is rendered in ``wire_format`` (the
    client's bytes pass untouched when that is the client's own format), then
    rewrapped by ``request(body, upstream_model)``; ``read(answer)`` is the
    count in the counter's answer, or None when it holds none (see
    ``formats.token_counts``)."""

    wire_format: str
    request: Callable[[dict[str, Any], str], dict[str, Any]]
    read: Callable[[object], int | None]


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
    #: the upstream's model list names what clients may ask for (Azure's lists
    #: base models, not the deployments requests must name)
    lists_models: bool = True
    error_as_answer: ErrorAnswer = no_answer
    #: reads an error as a refused credential (the account is excluded as on a 401)
    refuses_credentials: CredentialRefusal = no_refusal
    #: counts a request's input tokens upstream; None: the gateway estimates
    token_counter: TokenCounter | None = None
    #: the version segment a base URL ends with, as the provider's own SDK has
    #: it (OpenAI: "/v1"); the CLI hints when an account's base URL lacks it
    base_url_version: str | None = None
    #: the version segment the request paths start with (Anthropic: "/v1"); the
    #: CLI hints when an account's base URL ends with it already
    path_version: str | None = None
    #: the APIs an account may declare (``UpstreamAccount.wire``: ``chat`` or
    #: ``responses``) for chat-like requests: the operation sent upstream and its
    #: wire format; empty: the provider serves one API only
    declarable_wires: Mapping[str, tuple[Operation, str]] = field(default_factory=dict)

    def upstream_operation(
        self, account: UpstreamAccount, operation: Operation, upstream_model: str
    ) -> tuple[Operation, str | None]:
        """The operation sent upstream for a client's ``operation`` and its wire format
        (``None``: not served): the provider's own, unless the account declares which
        API serves chat-like requests for ``upstream_model``."""
        declared = account.declared_wire(upstream_model)
        if declared is not None and operation in _CHAT_LIKE:
            chosen = self.declarable_wires.get(declared)
            if chosen is not None:
                return chosen
        return operation, self.wire_formats.get(operation)

    def base_url(self, account: UpstreamAccount) -> str:
        base = account.base_url or self.default_base_url
        if not base:
            raise ValueError(f"upstream {account.id} has no base URL")
        return base.rstrip("/")
