"""What the gateway keeps, and where: the ``responses`` section (responses kept
for ``previous_response_id``), the ``ledger`` section (usage records in
SQLite) and the ``state`` section (state gateway processes share: local or
Redis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .fields import SchemaError, Section, read_bool, read_choice, read_int, read_seconds, read_str

__all__ = [
    "LedgerConfig",
    "ResponsesConfig",
    "STATE_BACKENDS",
    "StateConfig",
    "read_ledger",
    "read_responses",
    "read_state",
]


@dataclass(frozen=True, slots=True)
class ResponsesConfig:
    """Responses the gateway keeps for ``previous_response_id`` (converted traffic)."""

    #: at most this many are kept; the oldest go first
    max_stored: int = 10000
    #: seconds a kept response stays readable
    max_age: float = 30 * 86400.0


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


#: where state shared by gateway processes lives (``StateConfig.backend``)
STATE_BACKENDS = ("local", "redis")


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


def read_responses(data: object) -> ResponsesConfig:
    s, d = Section(data, "responses"), ResponsesConfig()
    result = ResponsesConfig(
        max_stored=s.get("max_stored", d.max_stored, read_int(0)),
        max_age=s.get("max_age", d.max_age, read_seconds),
    )
    s.finish()
    return result


def read_ledger(data: object) -> LedgerConfig:
    s, d = Section(data, "ledger"), LedgerConfig()
    result = LedgerConfig(
        enabled=s.get("enabled", d.enabled, read_bool),
        file=s.get("file", d.file, read_str),
        retention_days=s.get("retention_days", d.retention_days, read_seconds),
        batch_size=s.get("batch_size", d.batch_size, read_int(1, 100_000)),
        flush_interval=s.get("flush_interval", d.flush_interval, read_seconds),
        queue_size=s.get("queue_size", d.queue_size, read_int(1)),
    )
    s.finish()
    return result


def read_state(data: object) -> StateConfig:
    s, d = Section(data, "state"), StateConfig()
    result = StateConfig(
        backend=s.get("backend", d.backend, read_choice(STATE_BACKENDS)),
        url=s.get("url", d.url, _redis_url),
        username=s.get("username", d.username, read_str) or None,
        password=s.get("password", d.password, read_str) or None,
        key_prefix=s.get("key_prefix", d.key_prefix, read_str),
        ca_file=s.get("ca_file", d.ca_file, read_str) or None,
        connect_timeout=s.get("connect_timeout", d.connect_timeout, read_seconds),
        command_timeout=s.get("command_timeout", d.command_timeout, read_seconds),
        retry_interval=s.get("retry_interval", d.retry_interval, read_seconds),
        retry_max=s.get("retry_max", d.retry_max, read_seconds),
        instances=s.get("instances", d.instances, read_int(1, 1000)),
    )
    if result.backend == "redis" and result.url is None:
        raise SchemaError("state.url", "is required with backend redis (redis://host:6379/0)")
    s.finish()
    return result


def _redis_url(path: str, value: object) -> str | None:
    text = read_str(path, value).strip()
    if not text:
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("redis", "rediss") or not rest.rpartition("@")[2]:
        raise SchemaError(path, "must be redis://host:port/db or rediss://host:port/db (TLS)")
    return text
