"""A registry of counters, gauges and histograms, and the Prometheus text format.

Theory of operation: families are declared once with fixed label names; the
request path only calls ``inc``/``set``/``observe`` with label values (a tuple
in the declared order). Nothing here does I/O or reads the clock. A
``snapshot`` is plain, JSON-ready data; snapshots of several processes add up
with ``merge`` (every value is a sum: counters, histogram buckets, and gauges
such as open connections), and ``render`` writes one as the text exposition
format 0.0.4: ``# HELP`` and ``# TYPE`` once per family, label values escaped
(backslash, double quote, line feed), histograms as cumulative ``_bucket``
lines with ``le`` up to ``+Inf`` plus ``_sum`` and ``_count``; counter names
end in ``_total``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Family", "Registry", "Snapshot", "merge", "render"]

#: name -> {"type", "help", "labels", "buckets", "samples": [[labels, value]]}
Snapshot = dict[str, dict[str, Any]]
Labels = tuple[str, ...]


@dataclass
class Family:
    name: str
    help: str
    type: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    #: counters and gauges: labels -> value; histograms: labels -> [bucket
    #: counts (not cumulative), then sum, then count]
    values: dict[Labels, Any] = field(default_factory=dict)

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {labels}")

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        if self.type != "counter" and self.type != "gauge":
            raise TypeError(f"{self.name} is a {self.type}")
        if self.type == "counter" and amount < 0:
            raise ValueError("counters only go up")
        self._check(labels)
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def set(self, labels: Labels, value: float) -> None:
        if self.type != "gauge":
            raise TypeError(f"{self.name} is a {self.type}")
        self._check(labels)
        self.values[labels] = value

    def observe(self, labels: Labels, value: float) -> None:
        if self.type != "histogram":
            raise TypeError(f"{self.name} is a {self.type}")
        self._check(labels)
        slots = self.values.get(labels)
        if slots is None:
            slots = self.values[labels] = [0] * (len(self.buckets) + 1) + [0.0, 0]
        index = len(self.buckets)  # +Inf
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                index = i
                break
        slots[index] += 1
        slots[-2] += value
        slots[-1] += 1

    def value(self, labels: Labels = ()) -> Any:
        return self.values.get(labels)


class Registry:
    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def _add(self, family: Family) -> Family:
        if family.name in self.families:
            raise ValueError(f"metric {family.name} declared twice")
        self.families[family.name] = family
        return family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Family:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        return self._add(Family(name, help, "counter", tuple(labels)))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Family:
        return self._add(Family(name, help, "gauge", tuple(labels)))

    def histogram(
        self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Family:
        bounds = tuple(float(b) for b in buckets)
        if list(bounds) != sorted(set(bounds)) or any(math.isinf(b) for b in bounds):
            raise ValueError(f"{name}: buckets must be increasing and finite")
        return self._add(Family(name, help, "histogram", tuple(labels), bounds))

    def snapshot(self) -> Snapshot:
        return {
            f.name: {
                "type": f.type,
                "help": f.help,
                "labels": list(f.labels),
                "buckets": list(f.buckets),
                "samples": [
                    [list(k), v if f.type != "histogram" else list(v)] for k, v in f.values.items()
                ],
            }
            for f in self.families.values()
        }


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The sum of several processes' snapshots (families as the first declares them)."""
    out: Snapshot = {}
    sums: dict[str, dict[Labels, Any]] = {}
    for snap in snapshots:
        for name, family in snap.items():
            if name not in out:
                out[name] = {**family, "samples": []}
                sums[name] = {}
            target = sums[name]
            for labels, value in family["samples"]:
                key = tuple(labels)
                if family["type"] == "histogram":
                    previous = target.get(key)
                    target[key] = (
                        list(value)
                        if previous is None
                        else [a + b for a, b in zip(previous, value, strict=True)]
                    )
                else:
                    target[key] = target.get(key, 0.0) + value
    for name, values in sums.items():
        out[name]["samples"] = [[list(k), v] for k, v in values.items()]
    return out


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def render(snapshot: Snapshot) -> str:
    """The text exposition format (version 0.0.4) of ``snapshot``."""
    lines: list[str] = []
    for name, family in snapshot.items():
        kind, names = family["type"], family["labels"]
        lines.append(f"# HELP {name} {_escape_help(family['help'])}")
        lines.append(f"# TYPE {name} {kind}")
        samples = sorted(family["samples"], key=lambda s: s[0])
        for labels, value in samples:
            if kind != "histogram":
                lines.append(f"{name}{_labels(names, labels)} {_number(value)}")
                continue
            bounds = [*family["buckets"], math.inf]
            cumulative = 0
            for bound, count in zip(bounds, value[: len(bounds)], strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{name}_bucket{_labels(names, labels, le)} {cumulative}")
            lines.append(f"{name}_sum{_labels(names, labels)} {_number(value[-2])}")
            lines.append(f"{name}_count{_labels(names, labels)} {_number(value[-1])}")
    return "\n".join(lines) + "\n"
