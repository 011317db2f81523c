"""The ``upstream_accounts`` entries (provider, credentials, models, quirks,
Azure addressing, sealed OAuth tokens) and the ``oauth`` section: the OAuth
client the gateway acts as.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..routing.models import lookup
from .fields import (
    SchemaError,
    Section,
    read_bool,
    read_choice,
    read_int,
    read_name_map,
    read_non_negative,
    read_number,
    read_str,
    read_str_list,
    read_str_map,
)

__all__ = [
    "ACCOUNT_TYPES",
    "AZURE_URL_STYLES",
    "AzureSettings",
    "OAuthSettings",
    "OAuthState",
    "PROVIDERS",
    "Quirks",
    "UpstreamAccount",
    "WIRES",
    "read_account",
    "read_oauth_settings",
]


#: Providers the configuration accepts.
PROVIDERS = ("anthropic", "openai", "openai-compatible", "gemini", "azure")


ACCOUNT_TYPES = ("api-key", "oauth")


#: how an Azure OpenAI account's URLs look: per deployment, or the v1 API
AZURE_URL_STYLES = ("deployments", "v1")


#: the APIs an account may declare for chat-like requests (``UpstreamAccount.wire``)
WIRES = ("chat", "responses")


@dataclass(frozen=True, slots=True)
class Quirks:
    """Per-account differences of OpenAI-compatible servers, as data, not code."""

    developer_role: bool = True
    max_completion_tokens: bool = True
    stream_usage: bool = True
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """How an Azure OpenAI account is addressed (other providers ignore it).

    ``url_style``: ``deployments`` (``/openai/deployments/{deployment}/...``
    with ``?api-version=``) or ``v1`` (``/openai/v1/...``, the deployment in the
    body's ``model``). ``api_version``: the deployments style's ``api-version``.
    """

    url_style: str = "deployments"
    api_version: str = "2024-10-21"


@dataclass(frozen=True, slots=True)
class OAuthState:
    """Sealed OAuth tokens and their bookkeeping (tokens stay sealed here)."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = None
    last_refresh: float | None = None
    last_error: str | None = None
    needs_reauth: bool = False
    pending_state: str | None = None
    pending_verifier: str | None = None
    #: whose tokens these are, as the token answer said (not secret)
    account_uuid: str | None = None
    account_email: str | None = None
    organization_uuid: str | None = None
    organization_name: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """The OAuth client the gateway acts as (defaults: Claude Code's public client).

    Overridable for tests and for compatible services. An empty
    ``token_fallback_url`` disables the fallback. ``refresh_margin`` (seconds):
    an access token this close to its expiry is refreshed before use.
    ``claude_code_version``: the Claude Code version requests on subscription
    accounts present (``user-agent: claude-cli/<version> (external, cli)``)
    when the client is not Claude Code itself.
    """

    authorize_url: str = "https://claude.ai/oauth/authorize"
    token_url: str = "https://console.anthropic.com/v1/oauth/token"
    token_fallback_url: str = "https://api.anthropic.com/v1/oauth/token"
    client_id: str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    redirect_uri: str = "https://console.anthropic.com/oauth/code/callback"
    scopes: tuple[str, ...] = ("org:create_api_key", "user:profile", "user:inference")
    refresh_margin: float = 300.0
    claude_code_version: str = "2.1.32"


@dataclass(frozen=True, slots=True)
class UpstreamAccount:
    id: str
    name: str
    type: str
    provider: str
    api_key: str | None = None
    base_url: str | None = None
    models: tuple[str, ...] = ()
    model_map: tuple[tuple[str, str], ...] = ()
    priority: int = 0
    weight: int = 1
    enabled: bool = True
    verify_tls: bool = True
    #: this account's own outbound proxy (``http://[user:pass@]host:port``), used for
    #: its API calls, its OAuth login and its token refreshes
    proxy: str | None = None
    quirks: Quirks = Quirks()
    oauth: OAuthState = OAuthState()
    created_at: str = ""
    #: requests sent to this account ask for at most this many output tokens
    max_output_tokens: int | None = None
    #: set by ``upstream enable``: a change clears a credential failure
    enabled_at: str = ""
    azure: AzureSettings = AzureSettings()
    #: the API chat-like requests use on this account (``chat`` or ``responses``,
    #: for providers that serve both; ``None``: the provider's own choice), and the
    #: upstream models (exact or glob) that always use the Responses API
    wire: str | None = None
    responses_models: tuple[str, ...] = ()

    @property
    def serves_no_model(self) -> bool:
        """No ``models`` and no ``model_map``: routing never picks this account
        (an account written without models gets none, not every model)."""
        return not self.models and not self.model_map

    def upstream_model(self, client_model: str) -> str:
        """The name sent upstream: ``model_map`` (exact names, then globs) or unchanged."""
        return lookup(self.model_map, client_model) or client_model

    def declared_wire(self, upstream_model: str) -> str | None:
        """``responses`` or ``chat`` when this account says which API serves
        ``upstream_model``; ``None`` leaves the choice to the provider."""
        if lookup(tuple((p, True) for p in self.responses_models), upstream_model):
            return "responses"
        return self.wire

    def maps(self, client_model: str) -> bool:
        """True if ``model_map`` has an entry (exact or glob) for ``client_model``."""
        return lookup(self.model_map, client_model) is not None


def _quirks(data: object, path: str) -> Quirks:
    s, d = Section(data, path), Quirks()
    result = Quirks(
        developer_role=s.get("developer_role", d.developer_role, read_bool),
        max_completion_tokens=s.get("max_completion_tokens", d.max_completion_tokens, read_bool),
        stream_usage=s.get("stream_usage", d.stream_usage, read_bool),
        extra_headers=s.get("extra_headers", d.extra_headers, read_str_map),
    )
    s.finish()
    return result


def _azure(data: object, path: str) -> AzureSettings:
    s, d = Section(data, path), AzureSettings()
    result = AzureSettings(
        url_style=s.get("url_style", d.url_style, read_choice(AZURE_URL_STYLES)),
        api_version=s.get("api_version", d.api_version, _api_version),
    )
    s.finish()
    return result


def _api_version(path: str, value: object) -> str:
    text = read_str(path, value).strip()
    if not text or not all(ch.isalnum() or ch in "-._" for ch in text):
        raise SchemaError(path, f"must be an api-version such as 2024-10-21; got {text!r}")
    return text


def _oauth(data: object, path: str) -> OAuthState:
    s = Section(data, path)
    result = OAuthState(
        access_token=s.get("access_token", None, read_str),
        refresh_token=s.get("refresh_token", None, read_str),
        expires_at=s.get("expires_at", None, read_number),
        last_refresh=s.get("last_refresh", None, read_number),
        last_error=s.get("last_error", None, read_str),
        needs_reauth=s.get("needs_reauth", False, read_bool),
        pending_state=s.get("pending_state", None, read_str),
        pending_verifier=s.get("pending_verifier", None, read_str),
        account_uuid=s.get("account_uuid", None, read_str),
        account_email=s.get("account_email", None, read_str),
        organization_uuid=s.get("organization_uuid", None, read_str),
        organization_name=s.get("organization_name", None, read_str),
    )
    s.finish()
    return result


def _account_proxy(path: str, value: object) -> str | None:
    text = read_str(path, value).strip()
    if not text:
        return None
    host = text.partition("://")[2].rpartition("@")[2].partition("/")[0]
    if not text.startswith("http://") or not host:
        raise SchemaError(path, "must be an http:// proxy URL (http://[user:pass@]host:port)")
    return text


def read_account(data: object, path: str) -> UpstreamAccount:
    s = Section(data, path)
    result = UpstreamAccount(
        id=s.require("id", read_str),
        name=s.require("name", read_str),
        type=s.require("type", read_choice(ACCOUNT_TYPES)),
        provider=s.require("provider", read_choice(PROVIDERS)),
        api_key=s.get("api_key", None, read_str),
        base_url=s.get("base_url", None, read_str),
        models=s.get("models", (), read_str_list),
        model_map=s.get("model_map", (), read_name_map),
        priority=s.get("priority", 0, read_int(-1_000_000, 1_000_000)),
        weight=s.get("weight", 1, read_int(1, 1_000_000)),
        enabled=s.get("enabled", True, read_bool),
        verify_tls=s.get("verify_tls", True, read_bool),
        proxy=s.get("proxy", None, _account_proxy),
        quirks=_quirks(s.raw("quirks"), f"{path}.quirks"),
        oauth=_oauth(s.raw("oauth"), f"{path}.oauth"),
        created_at=s.get("created_at", "", read_str),
        max_output_tokens=s.get("max_output_tokens", None, read_int(1)),
        enabled_at=s.get("enabled_at", "", read_str),
        azure=_azure(s.raw("azure"), f"{path}.azure"),
        wire=s.get("wire", None, read_choice(WIRES)),
        responses_models=s.get("responses_models", (), read_str_list),
    )
    s.finish()
    return result


def _http_url(path: str, value: object) -> str:
    text = read_str(path, value)
    if not text.startswith(("http://", "https://")):
        raise SchemaError(path, "must be an http:// or https:// URL")
    return text


def _optional_http_url(path: str, value: object) -> str:
    text = read_str(path, value)
    return _http_url(path, text) if text else text


def _scopes(path: str, value: object) -> tuple[str, ...]:
    items = read_str_list(path, value)
    if not items:
        raise SchemaError(path, "must name at least one scope")
    return items


def _version(path: str, value: object) -> str:
    text = read_str(path, value)
    if not text or not all(c.isalnum() or c in ".-+_" for c in text):
        raise SchemaError(path, "must be a version such as 2.1.32")
    return text


def read_oauth_settings(data: object) -> OAuthSettings:
    s, d = Section(data, "oauth"), OAuthSettings()
    result = OAuthSettings(
        authorize_url=s.get("authorize_url", d.authorize_url, _http_url),
        token_url=s.get("token_url", d.token_url, _http_url),
        token_fallback_url=s.get("token_fallback_url", d.token_fallback_url, _optional_http_url),
        client_id=s.get("client_id", d.client_id, read_str),
        redirect_uri=s.get("redirect_uri", d.redirect_uri, read_str),
        scopes=s.get("scopes", d.scopes, _scopes),
        refresh_margin=s.get("refresh_margin", d.refresh_margin, read_non_negative),
        claude_code_version=s.get("claude_code_version", d.claude_code_version, _version),
    )
    s.finish()
    return result
