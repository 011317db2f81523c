"""The ``routing`` section (strategies, attempts, deadlines, health and
rate-limit backoff) and the ``fallbacks`` map: which account serves a request,
and what happens when it fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .fields import (
    SchemaError,
    Section,
    read_bool,
    read_choice,
    read_int,
    read_model_name,
    read_non_negative,
    read_seconds,
    read_str,
    read_str_list,
    read_str_map,
    type_name,
)

__all__ = [
    "RoutingConfig",
    "STRATEGIES",
    "read_fallback_map",
    "read_routing",
]


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


def _strategy_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    pairs = read_str_map(path, value)
    for model, strategy in pairs:
        read_choice(STRATEGIES)(f"{path}.{model}", strategy)
    return pairs


def read_routing(data: object) -> RoutingConfig:
    s, d = Section(data, "routing"), RoutingConfig()
    result = RoutingConfig(
        strategy=s.get("strategy", d.strategy, read_choice(STRATEGIES)),
        model_strategies=s.get("model_strategies", d.model_strategies, _strategy_map),
        max_attempts=s.get("max_attempts", d.max_attempts, read_int(1, 100)),
        deadline=s.get("deadline", d.deadline, read_seconds),
        max_retry_wait=s.get("max_retry_wait", d.max_retry_wait, read_non_negative),
        sticky_sessions=s.get("sticky_sessions", d.sticky_sessions, read_bool),
        failure_threshold=s.get("failure_threshold", d.failure_threshold, read_int(1, 1000)),
        open_base=s.get("open_base", d.open_base, read_seconds),
        open_max=s.get("open_max", d.open_max, read_seconds),
        rate_limit_default=s.get("rate_limit_default", d.rate_limit_default, read_seconds),
        rate_limit_max=s.get("rate_limit_max", d.rate_limit_max, read_seconds),
        health_check_interval=s.get(
            "health_check_interval", d.health_check_interval, read_non_negative
        ),
        credential_retry_base=s.get("credential_retry_base", d.credential_retry_base, read_seconds),
        credential_retry_max=s.get("credential_retry_max", d.credential_retry_max, read_seconds),
        models_refresh_interval=s.get(
            "models_refresh_interval", d.models_refresh_interval, read_non_negative
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


def read_fallback_map(path: str, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, not {type_name(value)}")
    result = []
    for model, targets in value.items():
        name = read_str(path, model)
        entry = f"{path}.{name}"
        items = (targets,) if isinstance(targets, str) else read_str_list(entry, targets)
        result.append((name, tuple(read_model_name(entry, t) for t in items)))
    return tuple(result)
