"""A registry of counters, gauges and histograms, and the Prometheus text format.

Theory of operation: families are declared once with fixed label names; the
request path only calls ``inc``/``set``/``observe`` with label values (a tuple
in the declared order). Each label-value combination is one *series*: a
``Value`` (counters, gauges) or a ``Buckets`` (histograms), created on first
use. A caller that counts the same series again and again keeps the series
object (``Family.series_of``) and adds to it directly: no label tuple, no
lookup, no check per event; a histogram finds its bucket with ``bisect``.
Nothing here does I/O or reads the clock. A ``snapshot`` is plain,
JSON-ready data; snapshots of several processes add up with ``merge`` (every
value is a sum: counters, histogram buckets, and gauges such as open
connections), and ``render`` writes one as the text exposition format 0.0.4:
``# HELP`` and ``# TYPE`` once per family, label values escaped (backslash,
double quote, line feed), histograms as cumulative ``_bucket`` lines with
``le`` up to ``+Inf`` plus ``_sum`` and ``_count``; counter names end in
``_total``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Buckets", "Family", "Registry", "Snapshot", "Value", "merge", "render"]

#: name -> {"type", "help", "labels", "buckets", "samples": [[labels, value]]}
Snapshot = dict[str, dict[str, Any]]
Labels = tuple[str, ...]


class Value:
    """One series of a counter or a gauge."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class Buckets:
    """One series of a histogram: a count per bucket (not cumulative), sum, count."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        #: one per bound, then +Inf
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # the first bound >= value (``le`` is inclusive); past the last: +Inf
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


@dataclass
class Family:
    name: str
    help: str
    type: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    #: label values -> the series (``Value`` or ``Buckets`` as the type says)
    series: dict[Labels, Value | Buckets] = field(default_factory=dict)

    def series_of(self, labels: Labels) -> Value | Buckets:
        """The series of ``labels``, created on first use (keep it to count often)."""
        found = self.series.get(labels)
        if found is None:
            if len(labels) != len(self.labels):
                raise ValueError(f"{self.name} takes labels {self.labels}, got {labels}")
            found = Buckets(self.buckets) if self.type == "histogram" else Value()
            self.series[labels] = found
        return found

    def value_of(self, labels: Labels = ()) -> Value:
        """A counter's or gauge's series."""
        if self.type == "histogram":
            raise TypeError(f"{self.name} is a {self.type}")
        found = self.series_of(labels)
        assert isinstance(found, Value)
        return found

    def buckets_of(self, labels: Labels) -> Buckets:
        """A histogram's series."""
        if self.type != "histogram":
            raise TypeError(f"{self.name} is a {self.type}")
        found = self.series_of(labels)
        assert isinstance(found, Buckets)
        return found

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        if self.type == "counter" and amount < 0:
            raise ValueError("counters only go up")
        self.value_of(labels).value += amount

    def set(self, labels: Labels, value: float) -> None:
        if self.type != "gauge":
            raise TypeError(f"{self.name} is a {self.type}")
        self.value_of(labels).value = value

    def observe(self, labels: Labels, value: float) -> None:
        self.buckets_of(labels).observe(value)

    def value(self, labels: Labels = ()) -> float | None:
        """A counter's or gauge's value, None before its first event."""
        found = self.series.get(labels)
        return found.value if isinstance(found, Value) else None

    def clear(self) -> None:
        """Forget every series (for values set afresh at each scrape)."""
        self.series.clear()

    def samples(self) -> list[list[Any]]:
        """``[[label values], value]`` per series; a histogram's value is its bucket
        counts (not cumulative), then sum, then count."""
        out: list[list[Any]] = []
        for labels, found in self.series.items():
            if isinstance(found, Buckets):
                out.append([list(labels), [*found.counts, found.sum, found.count]])
            else:
                out.append([list(labels), found.value])
        return out


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
                "samples": f.samples(),
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
