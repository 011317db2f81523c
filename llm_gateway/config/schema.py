"""The configuration's shape: typed, validated, immutable.

Theory of operation: the YAML file is read into plain data, then
``parse_config`` walks it section by section and builds frozen dataclasses.
Every problem raises ``SchemaError`` carrying the dotted path of the field
(``upstream_accounts[1].provider``), so the store can point at the file and
line. Unknown keys are errors: a typo must not silently do nothing.

Writers never build YAML from these dataclasses; they edit the plain data under
the store's lock and re-validate it with ``parse_config`` before it is written
(see ``store.py``). ``default_document`` is the file a first run creates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..routing.models import is_glob, lookup

__all__ = [
    "ACCOUNT_TYPES",
    "AZURE_URL_STYLES",
    "AzureSettings",
    "Config",
    "EnvironmentConfig",
    "GatewayKey",
    "BUDGET_PERIODS",
    "LedgerConfig",
    "LoggingConfig",
    "MetricsConfig",
    "PriceRule",
    "PricesConfig",
    "Rates",
    "OAuthSettings",
    "OAuthState",
    "PERMISSIONS",
    "PROVIDERS",
    "ProxyConfig",
    "ResponsesConfig",
    "RoutingConfig",
    "Quirks",
    "SchemaError",
    "ServerConfig",
    "STATE_BACKENDS",
    "StateConfig",
    "UpstreamAccount",
    "WIRES",
    "default_document",
    "parse_config",
]

#: Providers the configuration accepts.
PROVIDERS = ("anthropic", "openai", "openai-compatible", "gemini", "azure")
ACCOUNT_TYPES = ("api-key", "oauth")
#: how an Azure OpenAI account's URLs look: per deployment, or the v1 API
AZURE_URL_STYLES = ("deployments", "v1")
#: the APIs an account may declare for chat-like requests (``UpstreamAccount.wire``)
WIRES = ("chat", "responses")
PERMISSIONS = ("read", "write", "admin")
LOG_LEVELS = ("debug", "info", "warning", "error")
#: ``auto``: text when stderr is a terminal, JSON otherwise
LOG_FORMATS = ("auto", "json", "text")
#: the value of a limit that the gateway sizes itself (None in the dataclasses)
AUTO = "auto"
#: where state shared by gateway processes lives (``StateConfig.backend``)
STATE_BACKENDS = ("local", "redis")


class SchemaError(ValueError):
    """A value in the configuration has the wrong shape; ``path`` names it."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


@dataclass(frozen=True, slots=True)
class ServerConfig:
    #: loopback by default: listening on every interface (0.0.0.0) is a deliberate choice
    host: str = "127.0.0.1"
    port: int = 3847
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    #: None (``auto``): sized at start from the open-file limit (``server/capacity.py``)
    max_connections: int | None = None
    shutdown_timeout: float = 30.0
    cors_origins: tuple[str, ...] = ()
    #: a request body must arrive within this many seconds, plus its size at
    #: ``body_min_rate`` bytes per second (0: no allowance for size)
    body_timeout: float = 30.0
    body_min_rate: int = 65536
    #: seconds of upstream silence after which a stream gets a keepalive (0: never)
    stream_keepalive: float = 15.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Timeouts and limits for requests to upstreams (all seconds)."""

    connect_timeout: float = 10.0
    tls_timeout: float = 10.0
    response_timeout: float = 300.0
    stream_idle_timeout: float = 300.0
    request_timeout: float = 600.0
    idle_connection_timeout: float = 60.0
    #: None (``auto``): no cap below what the open-file limit allows (``server/capacity.py``)
    max_connections_per_upstream: int | None = None
    max_response_bytes: int = 64 * 1024 * 1024
    #: bytes of memory large requests (1 MiB and more) may hold at once while
    #: parsed, converted and sent (estimated); the others wait their turn
    large_request_memory: int = 128 * 1024 * 1024


STRATEGIES = ("health-first", "round-robin", "weighted", "least-latency", "priority")


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """How accounts are chosen and how failures are handled."""

    strategy: str = "health-first"
    #: model glob -> strategy, first match wins; others use ``strategy``
    model_strategies: tuple[tuple[str, str], ...] = ()
    max_attempts: int = 10
    #: seconds within which all attempts must have started
    deadline: float = 120.0
    #: a lone account's 429 is retried after ``retry-after`` if it is at most this
    max_retry_wait: float = 5.0
    sticky_sessions: bool = True
    failure_threshold: int = 3
    open_base: float = 10.0
    open_max: float = 300.0
    rate_limit_default: float = 30.0
    rate_limit_max: float = 600.0
    #: probe accounts whose circuit is open, every this many seconds (0: off)
    health_check_interval: float = 0.0
    #: rejected credentials keep an account out this long, doubling per failed
    #: re-check up to ``credential_retry_max``
    credential_retry_base: float = 60.0
    credential_retry_max: float = 3600.0
    #: ask glob-only accounts' upstreams for their model list this often (0: never)
    models_refresh_interval: float = 600.0


@dataclass(frozen=True, slots=True)
class ResponsesConfig:
    """Responses the gateway keeps for ``previous_response_id`` (converted traffic)."""

    #: at most this many are kept; the oldest go first
    max_stored: int = 10000
    #: seconds a kept response stays readable
    max_age: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class EnvironmentConfig:
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None

    def as_mapping(self) -> dict[str, str | None]:
        return {
            "http_proxy": self.http_proxy,
            "https_proxy": self.https_proxy,
            "no_proxy": self.no_proxy,
        }


@dataclass(frozen=True, slots=True)
class GatewayKey:
    id: str
    name: str
    hash: str
    permissions: tuple[str, ...] = ("read", "write")
    enabled: bool = True
    created_at: str = ""
    expires_at: str | None = None
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    #: spend allowed per ``budget_period``, in the price table's currency
    budget: float | None = None
    budget_period: str = "month"


BUDGET_PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices per million tokens; a rate left out is charged as ``input``
    (cache reads and writes), ``cache_write_5m`` (one-hour writes) or ``output``
    (reasoning)."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class PriceRule:
    """The prices of the models whose name matches ``match`` (a glob)."""

    match: str
    rates: Rates
    #: above this many input tokens (fresh, cache read and written) in one
    #: request, ``long_context`` rates apply to the whole request
    long_context_threshold: int | None = None
    long_context: Rates | None = None


@dataclass(frozen=True, slots=True)
class PricesConfig:
    currency: str = "USD"
    #: when the prices were taken (shown beside costs)
    as_of: str = ""
    #: first match wins, on the upstream model, then the requested one
    models: tuple[PriceRule, ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """The usage ledger (SQLite in the home); read only at start."""

    enabled: bool = True
    #: relative to the gateway's home
    file: str = "usage.sqlite3"
    retention_days: float = 90.0
    batch_size: int = 256
    flush_interval: float = 0.5
    queue_size: int = 10_000


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``/metrics``: admin keys on the main port, and without a key on ``listen``."""

    enabled: bool = True
    #: host:port of a listener that serves only ``/metrics`` (read only at start)
    listen: str | None = None


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where the state gateway processes share lives; read only at start.

    ``local``: this host (exact across ``--workers``); ``redis``: a Redis (or
    Valkey) server shared by several instances, at ``url`` (``redis://`` or
    ``rediss://`` for TLS; a user and password in the URL or as fields).
    ``instances``: how many gateway instances share the configuration; while
    Redis cannot be reached each enforces ``1/instances`` of every limit.
    """

    backend: str = "local"
    #: may hold a password: never shown unmasked
    url: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    key_prefix: str = "llm-gateway:"
    #: the CA certificates (PEM) a ``rediss://`` server's certificate is checked
    #: against; None: the system's
    ca_file: str | None = None
    #: seconds to open a connection, and to get one command's answer
    connect_timeout: float = 0.5
    command_timeout: float = 0.25
    #: seconds before a failed Redis is tried again; doubles up to ``retry_max``
    retry_interval: float = 1.0
    retry_max: float = 30.0
    instances: int = 1


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


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = ServerConfig()
    proxy: ProxyConfig = ProxyConfig()
    routing: RoutingConfig = RoutingConfig()
    logging: LoggingConfig = LoggingConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    responses: ResponsesConfig = ResponsesConfig()
    gateway_keys: tuple[GatewayKey, ...] = ()
    upstream_accounts: tuple[UpstreamAccount, ...] = field(default_factory=tuple)
    oauth: OAuthSettings = OAuthSettings()
    #: requested model (exact or glob) -> the model routed to; exact names first
    model_aliases: tuple[tuple[str, str], ...] = ()
    #: model (exact or glob) -> models tried when all of its accounts failed
    fallbacks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    prices: PricesConfig = PricesConfig()
    ledger: LedgerConfig = LedgerConfig()
    metrics: MetricsConfig = MetricsConfig()
    state: StateConfig = StateConfig()

    def key_by_id(self, key_id: str) -> GatewayKey | None:
        for key in self.gateway_keys:
            if key.id == key_id:
                return key
        return None

    def account_by_id(self, account_id: str) -> UpstreamAccount | None:
        for account in self.upstream_accounts:
            if account.id == account_id:
                return account
        return None


def default_document() -> dict[str, Any]:
    """The plain data a first run writes: every section with its defaults."""
    server, proxy = ServerConfig(), ProxyConfig()
    return {
        "server": {
            "host": server.host,
            "port": server.port,
            "max_body_bytes": server.max_body_bytes,
            "max_header_bytes": server.max_header_bytes,
            "header_timeout": server.header_timeout,
            "keepalive_timeout": server.keepalive_timeout,
            "max_connections": AUTO,
            "shutdown_timeout": server.shutdown_timeout,
            "body_timeout": server.body_timeout,
            "body_min_rate": server.body_min_rate,
            "stream_keepalive": server.stream_keepalive,
            "cors_origins": [],
        },
        "proxy": {
            "connect_timeout": proxy.connect_timeout,
            "tls_timeout": proxy.tls_timeout,
            "response_timeout": proxy.response_timeout,
            "stream_idle_timeout": proxy.stream_idle_timeout,
            "request_timeout": proxy.request_timeout,
            "idle_connection_timeout": proxy.idle_connection_timeout,
            "max_connections_per_upstream": AUTO,
            "max_response_bytes": proxy.max_response_bytes,
            "large_request_memory": proxy.large_request_memory,
        },
        "routing": {
            "strategy": "health-first",
            "max_attempts": 10,
            "deadline": 120.0,
            "max_retry_wait": 5.0,
            "sticky_sessions": True,
            "health_check_interval": 0.0,
        },
        "gateway_keys": [],
        "upstream_accounts": [],
        "logging": {"level": "info", "format": "auto"},
        "environment": {"http_proxy": None, "https_proxy": None, "no_proxy": None},
    }


# --- field readers -----------------------------------------------------------

T = TypeVar("T")


class _Section:
    """Reads typed fields out of one mapping, remembering which were used."""

    def __init__(self, data: object, path: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SchemaError(path, f"must be a mapping, not {_type_name(data)}")
        for key in data:
            if not isinstance(key, str):
                raise SchemaError(path, f"keys must be strings, not {_type_name(key)}")
        self.data: Mapping[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def _sub(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: T, check: Callable[[str, object], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            return default
        return check(self._sub(name), self.data[name])

    def require(self, name: str, check: Callable[[str, object], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            raise SchemaError(self._sub(name), "is required")
        return check(self._sub(name), self.data[name])

    def raw(self, name: str) -> object:
        self.used.add(name)
        return self.data.get(name)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise SchemaError(self._sub(unknown[0]), "unknown setting")


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _str(path: str, value: object) -> str:
    if not isinstance(value, str):
        raise SchemaError(path, f"must be a string, not {_type_name(value)}")
    return value


def _bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(path, f"must be true or false, not {_type_name(value)}")
    return value


def _int(minimum: int, maximum: int | None = None) -> Callable[[str, object], int]:
    def check(path: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be a whole number, not {_type_name(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise SchemaError(path, f"must be at least {minimum}{upper}")
        return value

    return check


def _int_or_auto(minimum: int) -> Callable[[str, object], int | None]:
    """A whole number, or ``auto`` (None): the runtime derives the value."""
    whole = _int(minimum)

    def check(path: str, value: object) -> int | None:
        if value == AUTO:
            return None
        if isinstance(value, str):
            raise SchemaError(path, f"must be a whole number or {AUTO}, not {value!r}")
        return whole(path, value)

    return check


def _seconds(path: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(path, f"must be a number of seconds, not {_type_name(value)}")
    if not value > 0:
        raise SchemaError(path, "must be greater than 0")
    return float(value)


def _number(path: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(path, f"must be a number, not {_type_name(value)}")
    return float(value)


def _choice(options: tuple[str, ...]) -> Callable[[str, object], str]:
    def check(path: str, value: object) -> str:
        text = _str(path, value)
        if text not in options:
            raise SchemaError(path, f"must be one of {', '.join(options)}; got {text!r}")
        return text

    return check


def _str_list(path: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SchemaError(path, f"must be a list, not {_type_name(value)}")
    return tuple(_str(f"{path}[{i}]", item) for i, item in enumerate(value))


def _choice_list(options: tuple[str, ...]) -> Callable[[str, object], tuple[str, ...]]:
    def check(path: str, value: object) -> tuple[str, ...]:
        items = _str_list(path, value)
        for i, item in enumerate(items):
            _choice(options)(f"{path}[{i}]", item)
        return items

    return check


def _str_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, not {_type_name(value)}")
    return tuple((_str(path, k), _str(f"{path}.{k}", v)) for k, v in value.items())


# --- sections ----------------------------------------------------------------


def _server(data: object) -> ServerConfig:
    s, d = _Section(data, "server"), ServerConfig()
    result = ServerConfig(
        host=s.get("host", d.host, _str),
        port=s.get("port", d.port, _int(0, 65535)),
        max_body_bytes=s.get("max_body_bytes", d.max_body_bytes, _int(1)),
        max_header_bytes=s.get("max_header_bytes", d.max_header_bytes, _int(1024)),
        header_timeout=s.get("header_timeout", d.header_timeout, _seconds),
        keepalive_timeout=s.get("keepalive_timeout", d.keepalive_timeout, _seconds),
        max_connections=s.get("max_connections", d.max_connections, _int_or_auto(1)),
        shutdown_timeout=s.get("shutdown_timeout", d.shutdown_timeout, _seconds),
        cors_origins=s.get("cors_origins", d.cors_origins, _str_list),
        body_timeout=s.get("body_timeout", d.body_timeout, _seconds),
        body_min_rate=s.get("body_min_rate", d.body_min_rate, _int(0)),
        stream_keepalive=s.get("stream_keepalive", d.stream_keepalive, _non_negative),
    )
    s.finish()
    return result


def _proxy(data: object) -> ProxyConfig:
    s, d = _Section(data, "proxy"), ProxyConfig()
    result = ProxyConfig(
        connect_timeout=s.get("connect_timeout", d.connect_timeout, _seconds),
        tls_timeout=s.get("tls_timeout", d.tls_timeout, _seconds),
        response_timeout=s.get("response_timeout", d.response_timeout, _seconds),
        stream_idle_timeout=s.get("stream_idle_timeout", d.stream_idle_timeout, _seconds),
        request_timeout=s.get("request_timeout", d.request_timeout, _seconds),
        idle_connection_timeout=s.get(
            "idle_connection_timeout", d.idle_connection_timeout, _seconds
        ),
        max_connections_per_upstream=s.get(
            "max_connections_per_upstream", d.max_connections_per_upstream, _int_or_auto(1)
        ),
        max_response_bytes=s.get("max_response_bytes", d.max_response_bytes, _int(1)),
        large_request_memory=s.get("large_request_memory", d.large_request_memory, _int(1 << 20)),
    )
    s.finish()
    return result


def _non_negative(path: str, value: object) -> float:
    number = _number(path, value)
    if number < 0:
        raise SchemaError(path, "must not be negative")
    return number


def _strategy_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    pairs = _str_map(path, value)
    for model, strategy in pairs:
        _choice(STRATEGIES)(f"{path}.{model}", strategy)
    return pairs


def _routing(data: object) -> RoutingConfig:
    s, d = _Section(data, "routing"), RoutingConfig()
    result = RoutingConfig(
        strategy=s.get("strategy", d.strategy, _choice(STRATEGIES)),
        model_strategies=s.get("model_strategies", d.model_strategies, _strategy_map),
        max_attempts=s.get("max_attempts", d.max_attempts, _int(1, 100)),
        deadline=s.get("deadline", d.deadline, _seconds),
        max_retry_wait=s.get("max_retry_wait", d.max_retry_wait, _non_negative),
        sticky_sessions=s.get("sticky_sessions", d.sticky_sessions, _bool),
        failure_threshold=s.get("failure_threshold", d.failure_threshold, _int(1, 1000)),
        open_base=s.get("open_base", d.open_base, _seconds),
        open_max=s.get("open_max", d.open_max, _seconds),
        rate_limit_default=s.get("rate_limit_default", d.rate_limit_default, _seconds),
        rate_limit_max=s.get("rate_limit_max", d.rate_limit_max, _seconds),
        health_check_interval=s.get(
            "health_check_interval", d.health_check_interval, _non_negative
        ),
        credential_retry_base=s.get("credential_retry_base", d.credential_retry_base, _seconds),
        credential_retry_max=s.get("credential_retry_max", d.credential_retry_max, _seconds),
        models_refresh_interval=s.get(
            "models_refresh_interval", d.models_refresh_interval, _non_negative
        ),
    )
    if result.credential_retry_base > result.credential_retry_max:
        raise SchemaError("routing.credential_retry_base", "must not exceed credential_retry_max")
    s.finish()
    if result.open_base > result.open_max:
        raise SchemaError("routing.open_base", "must not be greater than routing.open_max")
    if result.rate_limit_default > result.rate_limit_max:
        raise SchemaError(
            "routing.rate_limit_default", "must not be greater than routing.rate_limit_max"
        )
    return result


def _logging(data: object) -> LoggingConfig:
    s, d = _Section(data, "logging"), LoggingConfig()
    level = s.get("level", d.level, _str).lower()
    if level not in LOG_LEVELS:
        raise SchemaError("logging.level", f"must be one of {', '.join(LOG_LEVELS)}")
    result = LoggingConfig(level=level, format=s.get("format", d.format, _choice(LOG_FORMATS)))
    s.finish()
    return result


def _responses(data: object) -> ResponsesConfig:
    s, d = _Section(data, "responses"), ResponsesConfig()
    result = ResponsesConfig(
        max_stored=s.get("max_stored", d.max_stored, _int(0)),
        max_age=s.get("max_age", d.max_age, _seconds),
    )
    s.finish()
    return result


def _environment(data: object) -> EnvironmentConfig:
    s = _Section(data, "environment")
    result = EnvironmentConfig(
        http_proxy=s.get("http_proxy", None, _str),
        https_proxy=s.get("https_proxy", None, _str),
        no_proxy=s.get("no_proxy", None, _str),
    )
    s.finish()
    return result


def _http_url(path: str, value: object) -> str:
    text = _str(path, value)
    if not text.startswith(("http://", "https://")):
        raise SchemaError(path, "must be an http:// or https:// URL")
    return text


def _optional_http_url(path: str, value: object) -> str:
    text = _str(path, value)
    return _http_url(path, text) if text else text


def _scopes(path: str, value: object) -> tuple[str, ...]:
    items = _str_list(path, value)
    if not items:
        raise SchemaError(path, "must name at least one scope")
    return items


def _version(path: str, value: object) -> str:
    text = _str(path, value)
    if not text or not all(c.isalnum() or c in ".-+_" for c in text):
        raise SchemaError(path, "must be a version such as 2.1.32")
    return text


def _oauth_settings(data: object) -> OAuthSettings:
    s, d = _Section(data, "oauth"), OAuthSettings()
    result = OAuthSettings(
        authorize_url=s.get("authorize_url", d.authorize_url, _http_url),
        token_url=s.get("token_url", d.token_url, _http_url),
        token_fallback_url=s.get("token_fallback_url", d.token_fallback_url, _optional_http_url),
        client_id=s.get("client_id", d.client_id, _str),
        redirect_uri=s.get("redirect_uri", d.redirect_uri, _str),
        scopes=s.get("scopes", d.scopes, _scopes),
        refresh_margin=s.get("refresh_margin", d.refresh_margin, _non_negative),
        claude_code_version=s.get("claude_code_version", d.claude_code_version, _version),
    )
    s.finish()
    return result


def _gateway_key(data: object, path: str) -> GatewayKey:
    s = _Section(data, path)
    result = GatewayKey(
        id=s.require("id", _str),
        name=s.require("name", _str),
        hash=s.require("hash", _str),
        permissions=s.get("permissions", ("read", "write"), _choice_list(PERMISSIONS)),
        enabled=s.get("enabled", True, _bool),
        created_at=s.get("created_at", "", _str),
        expires_at=s.get("expires_at", None, _str),
        models=s.get("models", (), _str_list),
        rpm=s.get("rpm", None, _int(1)),
        tpm=s.get("tpm", None, _int(1)),
        budget=s.get("budget", None, _non_negative),
        budget_period=s.get("budget_period", "month", _choice(BUDGET_PERIODS)),
    )
    s.finish()
    return result


def _quirks(data: object, path: str) -> Quirks:
    s, d = _Section(data, path), Quirks()
    result = Quirks(
        developer_role=s.get("developer_role", d.developer_role, _bool),
        max_completion_tokens=s.get("max_completion_tokens", d.max_completion_tokens, _bool),
        stream_usage=s.get("stream_usage", d.stream_usage, _bool),
        extra_headers=s.get("extra_headers", d.extra_headers, _str_map),
    )
    s.finish()
    return result


def _azure(data: object, path: str) -> AzureSettings:
    s, d = _Section(data, path), AzureSettings()
    result = AzureSettings(
        url_style=s.get("url_style", d.url_style, _choice(AZURE_URL_STYLES)),
        api_version=s.get("api_version", d.api_version, _api_version),
    )
    s.finish()
    return result


def _api_version(path: str, value: object) -> str:
    text = _str(path, value).strip()
    if not text or not all(ch.isalnum() or ch in "-._" for ch in text):
        raise SchemaError(path, f"must be an api-version such as 2024-10-21; got {text!r}")
    return text


def _oauth(data: object, path: str) -> OAuthState:
    s = _Section(data, path)
    result = OAuthState(
        access_token=s.get("access_token", None, _str),
        refresh_token=s.get("refresh_token", None, _str),
        expires_at=s.get("expires_at", None, _number),
        last_refresh=s.get("last_refresh", None, _number),
        last_error=s.get("last_error", None, _str),
        needs_reauth=s.get("needs_reauth", False, _bool),
        pending_state=s.get("pending_state", None, _str),
        pending_verifier=s.get("pending_verifier", None, _str),
        account_uuid=s.get("account_uuid", None, _str),
        account_email=s.get("account_email", None, _str),
        organization_uuid=s.get("organization_uuid", None, _str),
        organization_name=s.get("organization_name", None, _str),
    )
    s.finish()
    return result


def _account_proxy(path: str, value: object) -> str | None:
    text = _str(path, value).strip()
    if not text:
        return None
    host = text.partition("://")[2].rpartition("@")[2].partition("/")[0]
    if not text.startswith("http://") or not host:
        raise SchemaError(path, "must be an http:// proxy URL (http://[user:pass@]host:port)")
    return text


def _account(data: object, path: str) -> UpstreamAccount:
    s = _Section(data, path)
    result = UpstreamAccount(
        id=s.require("id", _str),
        name=s.require("name", _str),
        type=s.require("type", _choice(ACCOUNT_TYPES)),
        provider=s.require("provider", _choice(PROVIDERS)),
        api_key=s.get("api_key", None, _str),
        base_url=s.get("base_url", None, _str),
        models=s.get("models", (), _str_list),
        model_map=s.get("model_map", (), _name_map),
        priority=s.get("priority", 0, _int(-1_000_000, 1_000_000)),
        weight=s.get("weight", 1, _int(1, 1_000_000)),
        enabled=s.get("enabled", True, _bool),
        verify_tls=s.get("verify_tls", True, _bool),
        proxy=s.get("proxy", None, _account_proxy),
        quirks=_quirks(s.raw("quirks"), f"{path}.quirks"),
        oauth=_oauth(s.raw("oauth"), f"{path}.oauth"),
        created_at=s.get("created_at", "", _str),
        max_output_tokens=s.get("max_output_tokens", None, _int(1)),
        enabled_at=s.get("enabled_at", "", _str),
        azure=_azure(s.raw("azure"), f"{path}.azure"),
        wire=s.get("wire", None, _choice(WIRES)),
        responses_models=s.get("responses_models", (), _str_list),
    )
    s.finish()
    return result


def _rate(path: str, value: object) -> float:
    return _non_negative(path, value)


def _rates(data: object, path: str, base: Rates | None = None) -> Rates:
    s = _Section(data, path)
    d = base or Rates()
    result = Rates(
        input=s.get("input", d.input, _rate) if base else s.require("input", _rate),
        output=s.get("output", d.output, _rate) if base else s.require("output", _rate),
        cache_read=s.get("cache_read", d.cache_read, _rate),
        cache_write_5m=s.get("cache_write_5m", d.cache_write_5m, _rate),
        cache_write_1h=s.get("cache_write_1h", d.cache_write_1h, _rate),
        reasoning=s.get("reasoning", d.reasoning, _rate),
    )
    s.finish()
    return result


def _price_rule(data: object, path: str) -> PriceRule:
    if not isinstance(data, Mapping):
        raise SchemaError(path, f"must be a mapping, not {_type_name(data)}")
    plain = {k: v for k, v in data.items() if k not in ("match", "long_context")}
    s = _Section({k: data[k] for k in ("match", "long_context") if k in data}, path)
    match = s.require("match", _str)
    rates = _rates(plain, path)
    long = s.raw("long_context")
    threshold, long_rates = None, None
    if long is not None:
        if not isinstance(long, Mapping):
            raise SchemaError(f"{path}.long_context", f"must be a mapping, not {_type_name(long)}")
        lpath = f"{path}.long_context"
        threshold = _int(1)(f"{lpath}.threshold", long.get("threshold"))
        long_rates = _rates({k: v for k, v in long.items() if k != "threshold"}, lpath, rates)
    s.finish()
    return PriceRule(match, rates, threshold, long_rates)


def _prices(data: object) -> PricesConfig:
    s, d = _Section(data, "prices"), PricesConfig()
    rules = tuple(
        _price_rule(item, f"prices.models[{i}]")
        for i, item in enumerate(_list(s.raw("models"), "prices.models"))
    )
    result = PricesConfig(
        currency=s.get("currency", d.currency, _str),
        as_of=s.get("as_of", d.as_of, _str),
        models=rules,
    )
    s.finish()
    return result


def _ledger(data: object) -> LedgerConfig:
    s, d = _Section(data, "ledger"), LedgerConfig()
    result = LedgerConfig(
        enabled=s.get("enabled", d.enabled, _bool),
        file=s.get("file", d.file, _str),
        retention_days=s.get("retention_days", d.retention_days, _seconds),
        batch_size=s.get("batch_size", d.batch_size, _int(1, 100_000)),
        flush_interval=s.get("flush_interval", d.flush_interval, _seconds),
        queue_size=s.get("queue_size", d.queue_size, _int(1)),
    )
    s.finish()
    return result


def _listen_address(path: str, value: object) -> str | None:
    text = _str(path, value).strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SchemaError(path, f"must be host:port such as 127.0.0.1:9464; got {text!r}")
    return text


def _metrics(data: object) -> MetricsConfig:
    s, d = _Section(data, "metrics"), MetricsConfig()
    result = MetricsConfig(
        enabled=s.get("enabled", d.enabled, _bool),
        listen=s.get("listen", d.listen, _listen_address),
    )
    s.finish()
    return result


def _state(data: object) -> StateConfig:
    s, d = _Section(data, "state"), StateConfig()
    result = StateConfig(
        backend=s.get("backend", d.backend, _choice(STATE_BACKENDS)),
        url=s.get("url", d.url, _redis_url),
        username=s.get("username", d.username, _str) or None,
        password=s.get("password", d.password, _str) or None,
        key_prefix=s.get("key_prefix", d.key_prefix, _str),
        ca_file=s.get("ca_file", d.ca_file, _str) or None,
        connect_timeout=s.get("connect_timeout", d.connect_timeout, _seconds),
        command_timeout=s.get("command_timeout", d.command_timeout, _seconds),
        retry_interval=s.get("retry_interval", d.retry_interval, _seconds),
        retry_max=s.get("retry_max", d.retry_max, _seconds),
        instances=s.get("instances", d.instances, _int(1, 1000)),
    )
    if result.backend == "redis" and result.url is None:
        raise SchemaError("state.url", "is required with backend redis (redis://host:6379/0)")
    s.finish()
    return result


def _redis_url(path: str, value: object) -> str | None:
    text = _str(path, value).strip()
    if not text:
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("redis", "rediss") or not rest.rpartition("@")[2]:
        raise SchemaError(path, "must be redis://host:port/db or rediss://host:port/db (TLS)")
    return text


def _model_name(path: str, value: object) -> str:
    name = _str(path, value)
    if not name or is_glob(name):
        raise SchemaError(path, f"must name one model, not a pattern; got {name!r}")
    return name


def _name_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    """Model (exact or glob) -> one concrete model name."""
    pairs = _str_map(path, value)
    for pattern, target in pairs:
        _model_name(f"{path}.{pattern}", target)
    return pairs


def _fallback_map(path: str, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, not {_type_name(value)}")
    result = []
    for model, targets in value.items():
        name = _str(path, model)
        entry = f"{path}.{name}"
        items = (targets,) if isinstance(targets, str) else _str_list(entry, targets)
        result.append((name, tuple(_model_name(entry, t) for t in items)))
    return tuple(result)


def _list(data: object, path: str) -> list[object]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise SchemaError(path, f"must be a list, not {_type_name(data)}")
    return data


def _unique(items: tuple[Any, ...], path: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise SchemaError(f"{path}[{i}].id", f"duplicate id {item.id!r}")
        seen.add(item.id)


def parse_config(data: object) -> Config:
    """Validate plain data (as loaded from YAML) and build the typed Config."""
    top = _Section(data, "")
    keys = tuple(
        _gateway_key(item, f"gateway_keys[{i}]")
        for i, item in enumerate(_list(top.raw("gateway_keys"), "gateway_keys"))
    )
    accounts = tuple(
        _account(item, f"upstream_accounts[{i}]")
        for i, item in enumerate(_list(top.raw("upstream_accounts"), "upstream_accounts"))
    )
    _unique(keys, "gateway_keys")
    _unique(accounts, "upstream_accounts")
    config = Config(
        server=_server(top.raw("server")),
        proxy=_proxy(top.raw("proxy")),
        routing=_routing(top.raw("routing")),
        logging=_logging(top.raw("logging")),
        environment=_environment(top.raw("environment")),
        responses=_responses(top.raw("responses")),
        gateway_keys=keys,
        upstream_accounts=accounts,
        oauth=_oauth_settings(top.raw("oauth")),
        model_aliases=_name_map("model_aliases", top.raw("model_aliases") or {}),
        fallbacks=_fallback_map("fallbacks", top.raw("fallbacks") or {}),
        prices=_prices(top.raw("prices")),
        ledger=_ledger(top.raw("ledger")),
        metrics=_metrics(top.raw("metrics")),
        state=_state(top.raw("state")),
    )
    top.finish()
    return config
