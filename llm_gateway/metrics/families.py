"""The gateway's metric families, and what each event adds to them.

Names follow the OpenTelemetry GenAI semantic conventions where they exist
(``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` with
``gen_ai.token.type``, ``gen_ai.server.time_to_first_token``; dots become
underscores and seconds get the ``_seconds`` suffix, as the OpenTelemetry to
Prometheus mapping does), with their bucket boundaries; the gateway's own
are prefixed ``llm_gateway_``. Label values are bounded: account and key ids,
format names, status classes, error class names, and models the
configuration names (anything else is ``other``, see ``model_label``).
"""

from __future__ import annotations

from ..config.schema import Config
from ..routing.models import is_glob
from ..routing.selection import matches
from .registry import Family, Registry

__all__ = ["GatewayMetrics", "OTHER", "model_label", "status_class"]

OTHER = "other"

#: gen_ai.client.operation.duration's advised boundaries (seconds)
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
#: gen_ai.client.token.usage's advised boundaries
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
#: gen_ai.server.time_to_first_token's advised boundaries (seconds)
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

_GEN_AI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def model_label(config: Config, model: str) -> str:
    """``model`` when the configuration names it exactly (an account's ``models``,
    ``model_map``, an alias or a fallback); the glob pattern that let it through
    when only a pattern matches; ``other`` otherwise (never a raw client string)."""
    if not model:
        return OTHER
    patterns: list[str] = []
    for account in config.upstream_accounts:
        names = [*account.models, *(name for name, _ in account.model_map)]
        for name in names:
            if name == model:
                return model
            if is_glob(name):
                patterns.append(name)
    for name in [*(n for n, _ in config.model_aliases), *(n for n, _ in config.fallbacks)]:
        if name == model:
            return model
        if is_glob(name):
            patterns.append(name)
    for pattern in patterns:
        if matches((pattern,), model):
            return pattern
    return OTHER


#: requested model -> label, remembered per configuration (at most this many)
_LABEL_CACHE = 1024


class GatewayMetrics:
    """The families, declared once per process."""

    def __init__(self) -> None:
        self._labels_for: Config | None = None
        self._labels: dict[str, str] = {}
        r = self.registry = Registry()
        self.duration: Family = r.histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration, as the gateway's clients saw it.",
            (*_GEN_AI, "error_type"),
            DURATION_BUCKETS,
        )
        self.tokens: Family = r.histogram(
            "gen_ai_client_token_usage",
            "Tokens used per request, by type (input, output, cache_read, cache_creation,"
            " reasoning).",
            (*_GEN_AI, "gen_ai_token_type"),
            TOKEN_BUCKETS,
        )
        self.ttft: Family = r.histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time until the upstream's first response byte, for successful responses.",
            _GEN_AI,
            TTFT_BUCKETS,
        )
        self.requests: Family = r.counter(
            "llm_gateway_requests_total",
            "Inference requests finished, by client format, account, status class and error.",
            ("client_format", "account", "status_class", "error_kind"),
        )
        self.cost: Family = r.counter(
            "llm_gateway_cost_total",
            "Estimated cost from the price table, in its currency.",
            ("key", "gen_ai_request_model"),
        )
        self.attempts: Family = r.counter(
            "llm_gateway_upstream_attempts_total",
            "Requests sent to upstream accounts, by outcome.",
            ("account", "outcome"),
        )
        self.failovers: Family = r.counter(
            "llm_gateway_failovers_total",
            "Times a request moved on to another account after this one failed.",
            ("account",),
        )
        self.retries: Family = r.counter(
            "llm_gateway_retries_total",
            "Times a request was sent again to the same account after its retry-after.",
            ("account",),
        )
        self.circuit: Family = r.gauge(
            "llm_gateway_circuit_state",
            "1 for each account's circuit state (summed over worker processes).",
            ("account", "state"),
        )
        self.rejected: Family = r.counter(
            "llm_gateway_key_rejections_total",
            "Requests refused for a gateway key's rate limit or spend budget.",
            ("key", "reason"),
        )
        self.connections: Family = r.gauge(
            "llm_gateway_open_connections", "Open client connections."
        )
        self.streams: Family = r.gauge("llm_gateway_open_streams", "Streams being relayed.")
        self.reloads: Family = r.counter(
            "llm_gateway_config_reloads_total",
            "Configuration reloads, by result (ok, failed).",
            ("result",),
        )
        self.oauth: Family = r.counter(
            "llm_gateway_oauth_refreshes_total",
            "OAuth access token refreshes, by account and result (ok, failed).",
            ("account", "result"),
        )
        self.ledger_dropped: Family = r.counter(
            "llm_gateway_ledger_dropped_total",
            "Usage records not written (queue full or the file failing).",
        )

    def model_label(self, config: Config, model: str) -> str:
        """``model_label``, remembered until the configuration is replaced."""
        if self._labels_for is not config or len(self._labels) >= _LABEL_CACHE:
            self._labels_for, self._labels = config, {}
        label = self._labels.get(model)
        if label is None:
            label = self._labels[model] = model_label(config, model)
        return label
