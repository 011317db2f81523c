"""Structured logging: one JSON object per line, or plain text for a terminal.

The format ``auto`` (the default) picks text when the log stream is a
terminal and JSON otherwise (a file, a pipe, a container's log collector);
``json`` and ``text`` force one.

Theory of operation: code logs through ``logging.getLogger("llm_gateway...")``
with fixed messages and fields passed in ``extra=``; the formatter copies the
known fields it finds on the record. Nothing here knows secrets; callers must
never pass them. ``LOG_LEVEL`` in the environment overrides the configured level.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import IO

__all__ = ["FIELDS", "configure", "resolve_format"]

#: the ``extra=`` fields the formatters print, in this order
FIELDS = (
    "request_id",
    "key_id",
    "method",
    "path",
    "client_format",
    "model",
    "account_id",
    "upstream_model",
    "status",
    "attempts",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "error",
    "reason",
    "address",
    "path_file",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(
            f"{name}={record.__dict__[name]}"
            for name in FIELDS
            if record.__dict__.get(name) is not None
        )
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        if fields:
            line += "  " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def resolve_format(fmt: str, stream: IO[str]) -> str:
    """``json`` or ``text``: ``auto`` is text on a terminal, JSON anywhere else."""
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


def configure(
    level: str, fmt: str, environ: Mapping[str, str], stream: IO[str] | None = None
) -> None:
    """Install one handler on the ``llm_gateway`` logger."""
    level = (environ.get("LOG_LEVEL") or level).upper()
    logger = logging.getLogger("llm_gateway")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    json_lines = resolve_format(fmt, out) == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level, logging.INFO))
    logger.propagate = False
