"""The configuration's shape: typed, validated, immutable.

Theory of operation: the YAML file is read into plain data, then
``parse_config`` walks it section by section and builds frozen dataclasses.
Every problem raises ``SchemaError`` carrying the dotted path of the field
(``upstream_accounts[1].provider``), so the store can point at the file and
line. Unknown keys are errors: a typo must not silently do nothing.

Writers never build YAML from these dataclasses; they edit the plain data under
the store's lock and re-validate it with ``parse_config`` before it is written
(see ``store.py``). ``default_document`` is the file a first run creates.

This module holds the whole ``Config``, its ``gateway_keys`` and ``prices``
sections, and ``parse_config``; the other sections live in modules of their
own (``network``, ``routing``, ``accounts``, ``storage``, ``telemetry``), on
the field readers of ``fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .accounts import OAuthSettings, UpstreamAccount, read_account, read_oauth_settings
from .fields import (
    AUTO,
    SchemaError,
    Section,
    check_unique,
    read_bool,
    read_choice,
    read_choice_list,
    read_int,
    read_list,
    read_name_map,
    read_non_negative,
    read_str,
    read_str_list,
    type_name,
)
from .network import (
    EnvironmentConfig,
    ProxyConfig,
    ServerConfig,
    read_environment,
    read_proxy,
    read_server,
)
from .routing import RoutingConfig, read_fallback_map, read_routing
from .storage import (
    LedgerConfig,
    ResponsesConfig,
    StateConfig,
    read_ledger,
    read_responses,
    read_state,
)
from .telemetry import LoggingConfig, MetricsConfig, read_logging, read_metrics

__all__ = [
    "BUDGET_PERIODS",
    "Config",
    "GatewayKey",
    "PERMISSIONS",
    "PriceRule",
    "PricesConfig",
    "Rates",
    "default_document",
    "parse_config",
]


PERMISSIONS = ("read", "write", "admin")


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


def _gateway_key(data: object, path: str) -> GatewayKey:
    s = Section(data, path)
    result = GatewayKey(
        id=s.require("id", read_str),
        name=s.require("name", read_str),
        hash=s.require("hash", read_str),
        permissions=s.get("permissions", ("read", "write"), read_choice_list(PERMISSIONS)),
        enabled=s.get("enabled", True, read_bool),
        created_at=s.get("created_at", "", read_str),
        expires_at=s.get("expires_at", None, read_str),
        models=s.get("models", (), read_str_list),
        rpm=s.get("rpm", None, read_int(1)),
        tpm=s.get("tpm", None, read_int(1)),
        budget=s.get("budget", None, read_non_negative),
        budget_period=s.get("budget_period", "month", read_choice(BUDGET_PERIODS)),
    )
    s.finish()
    return result


def _rate(path: str, value: object) -> float:
    return read_non_negative(path, value)


def _rates(data: object, path: str, base: Rates | None = None) -> Rates:
    s = Section(data, path)
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
        raise SchemaError(path, f"must be a mapping, not {type_name(data)}")
    plain = {k: v for k, v in data.items() if k not in ("match", "long_context")}
    s = Section({k: data[k] for k in ("match", "long_context") if k in data}, path)
    match = s.require("match", read_str)
    rates = _rates(plain, path)
    long = s.raw("long_context")
    threshold, long_rates = None, None
    if long is not None:
        if not isinstance(long, Mapping):
            raise SchemaError(f"{path}.long_context", f"must be a mapping, not {type_name(long)}")
        lpath = f"{path}.long_context"
        threshold = read_int(1)(f"{lpath}.threshold", long.get("threshold"))
        long_rates = _rates({k: v for k, v in long.items() if k != "threshold"}, lpath, rates)
    s.finish()
    return PriceRule(match, rates, threshold, long_rates)


def _prices(data: object) -> PricesConfig:
    s, d = Section(data, "prices"), PricesConfig()
    rules = tuple(
        _price_rule(item, f"prices.models[{i}]")
        for i, item in enumerate(read_list(s.raw("models"), "prices.models"))
    )
    result = PricesConfig(
        currency=s.get("currency", d.currency, read_str),
        as_of=s.get("as_of", d.as_of, read_str),
        models=rules,
    )
    s.finish()
    return result


def parse_config(data: object) -> Config:
    """Validate plain data (as loaded from YAML) and build the typed Config."""
    top = Section(data, "")
    keys = tuple(
        _gateway_key(item, f"gateway_keys[{i}]")
        for i, item in enumerate(read_list(top.raw("gateway_keys"), "gateway_keys"))
    )
    accounts = tuple(
        read_account(item, f"upstream_accounts[{i}]")
        for i, item in enumerate(read_list(top.raw("upstream_accounts"), "upstream_accounts"))
    )
    check_unique(keys, "gateway_keys")
    check_unique(accounts, "upstream_accounts")
    config = Config(
        server=read_server(top.raw("server")),
        proxy=read_proxy(top.raw("proxy")),
        routing=read_routing(top.raw("routing")),
        logging=read_logging(top.raw("logging")),
        environment=read_environment(top.raw("environment")),
        responses=read_responses(top.raw("responses")),
        gateway_keys=keys,
        upstream_accounts=accounts,
        oauth=read_oauth_settings(top.raw("oauth")),
        model_aliases=read_name_map("model_aliases", top.raw("model_aliases") or {}),
        fallbacks=read_fallback_map("fallbacks", top.raw("fallbacks") or {}),
        prices=_prices(top.raw("prices")),
        ledger=read_ledger(top.raw("ledger")),
        metrics=read_metrics(top.raw("metrics")),
        state=read_state(top.raw("state")),
    )
    top.finish()
    return config
