"""A strict parser of the Prometheus text exposition format (0.0.4), for tests.

It refuses what the format's rules refuse: a sample before its family's
``# TYPE``, a family declared twice or split, bad metric or label names,
unescaped or unknown escapes in label values, a repeated label, a value that
is not a float, a counter not ending in ``_total``, a histogram without its
``+Inf`` bucket, with buckets that are not cumulative, or whose ``+Inf``
bucket differs from ``_count``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)


def _labels(text: str, line: str) -> tuple[Labels, str]:
    """Parse ``{a="x",b="y"}`` at the start of ``text``; returns labels and the rest."""
    assert text.startswith("{"), line
    i, out, seen = 1, [], set()
    while True:
        if text[i] == "}":
            return tuple(sorted(out)), text[i + 1 :]
        match = LABEL.match(text, i)
        assert match, f"bad label name in {line!r}"
        name = match.group()
        assert name not in seen, f"label {name} repeated in {line!r}"
        seen.add(name)
        i = match.end()
        assert text[i : i + 2] == '="', f"expected =\" in {line!r}"
        i += 2
        value = []
        while text[i] != '"':
            char = text[i]
            assert char != "\n", line
            if char == "\\":
                nxt = text[i + 1]
                assert nxt in '\\"n', f"unknown escape \\{nxt} in {line!r}"
                value.append({"n": "\n"}.get(nxt, nxt))
                i += 2
                continue
            value.append(char)
            i += 1
        out.append((name, "".join(value)))
        i += 1
        if text[i] == ",":
            i += 1
        else:
            assert text[i] == "}", f"expected , or }} in {line!r}"


def _value(text: str, line: str) -> float:
    assert text in ("+Inf", "-Inf", "NaN") or re.fullmatch(
        r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text
    ), f"bad value {text!r} in {line!r}"
    return float(text)


def parse(text: str) -> dict[str, Family]:
    assert text.endswith("\n"), "the exposition ends with a line feed"
    families: dict[str, Family] = {}
    current: Family | None = None
    done: set[str] = set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, rest = line.split(" ", 2)
            name, _, value = rest.partition(" ")
            assert NAME.fullmatch(name), line
            if current is None or current.name != name:
                assert name not in families, f"family {name} split or declared twice"
                if current is not None:
                    done.add(current.name)
                current = families[name] = Family(name)
            if kind == "TYPE":
                assert current.type == "untyped" and not current.samples, line
                assert value in ("counter", "gauge", "histogram", "summary", "untyped"), line
                current.type = value
                if value == "counter":
                    assert name.endswith("_total"), f"counter {name} must end in _total"
            else:
                assert current.help is None, f"two HELP lines for {name}"
                assert "\\" not in value.replace("\\\\", "").replace("\\n", ""), line
                current.help = value
            continue
        assert line and not line.startswith("#"), f"unexpected line {line!r}"
        match = NAME.match(line)
        assert match, line
        sample_name = match.group()
        rest = line[match.end() :]
        labels: Labels = ()
        if rest.startswith("{"):
            labels, rest = _labels(rest, line)
        assert rest.startswith(" "), line
        parts = rest[1:].split(" ")
        assert 1 <= len(parts) <= 2, line
        value = _value(parts[0], line)
        assert current is not None, f"sample before any TYPE: {line!r}"
        base = current.name
        allowed = {base}
        if current.type == "histogram":
            allowed = {base + "_bucket", base + "_sum", base + "_count"}
        assert sample_name in allowed, f"{sample_name} does not belong to {base}"
        key = (sample_name, labels)
        assert key not in current.samples, f"sample repeated: {line!r}"
        current.samples[key] = value
    for family in families.values():
        assert family.type != "untyped", f"{family.name} has no TYPE"
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Family) -> None:
    series: dict[Labels, list[tuple[float, float]]] = {}
    for (name, labels), value in family.samples.items():
        if name.endswith("_bucket"):
            le = dict(labels)["le"]
            rest = tuple(p for p in labels if p[0] != "le")
            series.setdefault(rest, []).append((float(le), value))
    for labels, buckets in series.items():
        buckets.sort()
        assert buckets[-1][0] == math.inf, f"{family.name}{labels} has no +Inf bucket"
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"{family.name}{labels} buckets not cumulative"
        assert family.samples[(family.name + "_count", labels)] == counts[-1]
        assert (family.name + "_sum", labels) in family.samples


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    base = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            base = name[: -len(suffix)]
    family = families.get(base)
    if family is None:
        return 0.0
    wanted = set(labels.items())
    return sum(
        v for (n, ls), v in family.samples.items() if n == name and wanted <= set(ls)
    )
