"""What the gateway tells: the ``logging`` section and the ``metrics`` section
(``/metrics`` and its own listener).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import SchemaError, Section, read_bool, read_choice, read_str

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LoggingConfig",
    "MetricsConfig",
    "read_logging",
    "read_metrics",
]


LOG_LEVELS = ("debug", "info", "warning", "error")


#: ``auto``: text when stderr is a terminal, JSON otherwise
LOG_FORMATS = ("auto", "json", "text")


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``/metrics``: admin keys on the main port, and without a key on ``listen``."""

    enabled: bool = True
    #: host:port of a listener that serves only ``/metrics`` (read only at start)
    listen: str | None = None


def read_logging(data: object) -> LoggingConfig:
    s, d = Section(data, "logging"), LoggingConfig()
    level = s.get("level", d.level, read_str).lower()
    if level not in LOG_LEVELS:
        raise SchemaError("logging.level", f"must be one of {', '.join(LOG_LEVELS)}")
    result = LoggingConfig(level=level, format=s.get("format", d.format, read_choice(LOG_FORMATS)))
    s.finish()
    return result


def read_metrics(data: object) -> MetricsConfig:
    s, d = Section(data, "metrics"), MetricsConfig()
    result = MetricsConfig(
        enabled=s.get("enabled", d.enabled, read_bool),
        listen=s.get("listen", d.listen, _listen_address),
    )
    s.finish()
    return result


def _listen_address(path: str, value: object) -> str | None:
    text = read_str(path, value).strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SchemaError(path, f"must be host:port such as 127.0.0.1:9464; got {text!r}")
    return text
