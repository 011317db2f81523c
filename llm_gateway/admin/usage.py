"""Usage for the admin page's charts and request list, from the ledger's rows.

Pure: the ledger's ``SeriesPoint``s and records in, plain JSON data out; the
current time is passed in. A chart covers one of ``RANGES`` in fixed buckets
whose edges are multiples of the bucket size (so a refresh moves the chart by
whole buckets instead of re-slicing it). Each metric (requests, tokens, cost,
errors) becomes one dense list per group, with zeros where a bucket had no
request; the groups beyond the ``TOP_GROUPS`` largest are summed into
``OTHER`` so a chart stays readable whatever the number of models or keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidRequest
from ..ledger.query import SeriesPoint, SummaryRow
from ..ledger.records import LedgerRecord

__all__ = [
    "BY",
    "METRICS",
    "OTHER",
    "RANGES",
    "TOP_GROUPS",
    "Window",
    "chart_data",
    "record_view",
    "summary_view",
    "window",
]

#: range name -> (seconds covered, bucket size in seconds)
RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 1800),
    "7d": (7 * 86400, 6 * 3600),
    "30d": (30 * 86400, 86400),
}
BY = ("model", "key", "account")
METRICS = ("requests", "tokens", "cost", "errors")
TOP_GROUPS = 8
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    since: float
    until: float
    step: int

    @property
    def buckets(self) -> int:
        return (int(self.until) - int(self.since)) // self.step


def window(name: str, now: float) -> Window:
    """The buckets of range ``name`` ending with the one that holds ``now``."""
    if name not in RANGES:
        raise InvalidRequest(
            f"unknown range {name!r}: use one of {', '.join(RANGES)}", param="range"
        )
    span, step = RANGES[name]
    until = (math.floor(now / step) + 1) * step
    return Window(name, float(until - span), float(until), step)


def _value(point: SeriesPoint, metric: str) -> float:
    if metric == "requests":
        return point.requests
    if metric == "tokens":
        return point.input_tokens + point.output_tokens
    if metric == "cost":
        return point.cost
    return point.errors


def chart_data(
    points: Sequence[SeriesPoint], win: Window, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Dense per-group series of every metric over ``win``'s buckets."""
    weight: dict[str, float] = {}
    for point in points:
        weight[point.group] = weight.get(point.group, 0.0) + point.requests + point.cost
    ranked = sorted(weight, key=lambda g: (-weight[g], g))
    kept = set(ranked[:TOP_GROUPS])
    groups = [g for g in ranked if g in kept] + ([OTHER] if len(ranked) > TOP_GROUPS else [])
    series = {m: {g: [0.0] * win.buckets for g in groups} for m in METRICS}
    for point in points:
        index = int((point.start - win.since) // win.step)
        if not 0 <= index < win.buckets:
            continue
        group = point.group if point.group in kept else OTHER
        for metric in METRICS:
            series[metric][group][index] += _value(point, metric)
    for metric in ("requests", "tokens", "errors"):
        for values in series[metric].values():
            values[:] = [int(v) for v in values]
    names = labels or {}
    return {
        "range": win.name,
        "since": win.since,
        "until": win.until,
        "step_s": win.step,
        "groups": [{"id": g, "label": names.get(g, g or "(none)")} for g in groups],
        "series": series,
    }


def summary_view(row: SummaryRow) -> dict[str, Any]:
    return {
        "group": row.group,
        "requests": row.requests,
        "errors": row.errors,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cache_hit_rate": round(row.cache_hit_rate, 4),
        "cost": round(row.cost, 6),
    }


def record_view(
    record: LedgerRecord, key_names: Mapping[str, str], account_names: Mapping[str, str]
) -> dict[str, Any]:
    """One finished request for the page's list (ids and numbers, no content)."""
    moment = datetime.fromtimestamp(record.time, timezone.utc)
    return {
        "time": moment.isoformat(timespec="seconds"),
        "request_id": record.request_id,
        "key_id": record.key_id,
        "key_name": key_names.get(record.key_id),
        "account_id": record.account_id,
        "account_name": account_names.get(record.account_id),
        "client_format": record.client_format,
        "model": record.model,
        "upstream_model": record.upstream_model,
        "status": record.status,
        "error_kind": record.error_kind or None,
        "attempts": record.attempts,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "duration_ms": round(record.duration_ms, 1),
        "ttfb_ms": None if record.ttfb_ms is None else round(record.ttfb_ms, 1),
        "streamed": record.streamed,
        "cost": round(record.cost, 6),
    }
