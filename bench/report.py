"""The markdown report of one run: the matrix table, then the issue's targets.

Theory of operation: ``render_markdown`` takes the plain results that
``run.py`` stores as JSON (so an old JSON file can be re-rendered with
``python3 bench/report.py FILE.json``) and pairs each gateway measurement
with the direct measurement of the same upstream format, mode and
connection count. Ratios are against that direct baseline: throughput as
gateway/direct, latency as the milliseconds the gateway adds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["render_markdown"]

Row = dict[str, Any]

#: (same format?, streaming?) -> the issue's CPU target in ms per request
CPU_TARGETS = {
    (True, False): 0.35,
    (False, False): 0.5,
    (True, True): 0.6,
    (False, True): 1.0,
}
ADDED_P50_TARGET_MS = 0.3
IDLE_RSS_TARGET_MIB = 40
LOAD_RSS_TARGET_MIB = 60
#: another process used more than this share of the gateway's core: figures are suspect
NOISE_SHARE = 0.05


def _upstream(path: str) -> str:
    return path.split("→")[1]


def _same(path: str) -> bool:
    client, upstream = path.split("→")
    return client == upstream


def _direct_for(rows: list[Row], row: Row) -> Row | None:
    for other in rows:
        if (
            other["target"] == "direct"
            and other["path"] == _upstream(row["path"])
            and other["mode"] == row["mode"]
            and other["connections"] == row["connections"]
        ):
            return other
    return None


def _label(row: Row) -> str:
    label = str(row["path"])
    if row["variant"] == "usage-added":
        label += " ⁽ᵘ⁾"
    return label


def _noise(row: Row) -> float:
    return max(0.0, float(row["gateway_core_busy"]) - float(row["gateway_core_own"]))


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rows: list[Row] = results["measurements"]
    gateway_rows = [r for r in rows if r["target"] == "gateway"]
    order = {
        "openai→openai": 0,
        "anthropic→anthropic": 1,
        "openai→anthropic": 2,
        "anthropic→openai": 3,
        "openai→gemini": 4,
        "anthropic→gemini": 5,
    }
    gateway_rows.sort(
        key=lambda r: (r["mode"], order.get(r["path"], 9), r["variant"], r["connections"])
    )
    out = [
        f"Run of {meta['date']}: `{meta['command']}` ({meta['duration_s']:g} s per row after "
        f"{meta['warmup_s']:g} s warm-up; {meta['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {meta['cpus']} × {meta['cpu_model']}, Linux {meta['kernel']}; "
        f"gateway on CPU {meta['gateway_cpu']} ({meta['python']}), nginx + wrk on CPU "
        f"{meta['load_cpu']} ({meta['nginx']}, {meta['wrk']}); gateway `{meta['git']}`; "
        f"stub streams written {'in 256-byte pieces' if meta['sse_writes'] == 'pieces' else 'whole'}; "
        f"load average {meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after.",
        "",
        "| path | body | conns | req/s gw | req/s direct | gw / direct | p50 ms gw / direct "
        "| p50 added ms | p99 ms gw / direct | gw CPU ms/req | stub + wrk CPU ms/req "
        "| gw RSS MiB load / peak | errors gw / direct | gw core: other % | load core % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in gateway_rows:
        direct = _direct_for(rows, row)
        d_rps = direct["rps"] if direct else 0.0
        d_p50 = direct["p50_ms"] if direct else 0.0
        d_p99 = direct["p99_ms"] if direct else 0.0
        d_err = direct["errors"] if direct else "–"
        noise = _noise(row)
        flag = " ⚠" if noise > NOISE_SHARE else ""
        out.append(
            f"| {_label(row)} | {'stream' if row['mode'] == 'sse' else 'json'} "
            f"| {row['connections']} | {row['rps']:,.0f} | {d_rps:,.0f} "
            f"| {row['rps'] / d_rps if d_rps else 0:.3f} "
            f"| {row['p50_ms']:.3f} / {d_p50:.3f} | {row['p50_ms'] - d_p50:+.3f} "
            f"| {row['p99_ms']:.2f} / {d_p99:.2f} | **{row['cpu_ms_per_req']:.3f}** "
            f"| {row['stub_cpu_ms_per_req']:.3f} + {row['wrk_cpu_ms_per_req']:.3f} "
            f"| {row['gateway_rss_load_mib']:.1f} / {row['gateway_hwm_mib']:.1f} "
            f"| {row['errors']} / {d_err} | {noise * 100:.0f}{flag} | {row['load_core_busy'] * 100:.0f} |"
        )
    out += [
        "",
        "⁽ᵘ⁾ the OpenAI SDK's default stream request (no `stream_options`): the gateway adds "
        "`include_usage` upstream and rewrites every event to hide the usage chunk.",
        "",
        f"Gateway RSS: {results['gateway_idle_rss_mib']:.1f} MiB idle after start, "
        f"{results['gateway_rss_end_mib']:.1f} MiB at the end, peak (VmHWM) "
        f"{results['gateway_hwm_end_mib']:.1f} MiB.",
        "",
        *_targets(results, gateway_rows, rows),
    ]
    return "\n".join(out) + "\n"


def _targets(results: dict[str, Any], gateway_rows: list[Row], rows: list[Row]) -> list[str]:
    out = [
        "Against the issue's targets (one worker, one core):",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    names = {
        (True, False): "same format, non-streaming",
        (False, False): "cross format, non-streaming",
        (True, True): "same format, 20-chunk stream",
        (False, True): "cross format, 20-chunk stream",
    }
    for key, target in CPU_TARGETS.items():
        same, stream = key
        picked = [
            r
            for r in gateway_rows
            if _same(r["path"]) == same and (r["mode"] == "sse") == stream and not r["variant"]
        ]
        if not picked:
            continue
        worst = max(r["cpu_ms_per_req"] for r in picked)
        by_conns = ", ".join(
            f"{r['path'].replace('openai', 'O').replace('anthropic', 'A').replace('gemini', 'G')}"
            f"@{r['connections']}: "
            f"{r['cpu_ms_per_req']:.3f}"
            for r in picked
        )
        out.append(
            f"| {names[key]}: CPU ≤ {target} ms/req | worst {worst:.3f} ({by_conns}) "
            f"| {'yes' if worst <= target else 'no'} |"
        )
    single = [r for r in gateway_rows if r["connections"] == 1 and not r["variant"]]
    if single:
        added = []
        for row in single:
            direct = _direct_for(rows, row)
            if direct:
                added.append(row["p50_ms"] - direct["p50_ms"])
        if added:
            worst_added = max(added)
            out.append(
                f"| added p50 latency at 1 connection ≤ {ADDED_P50_TARGET_MS} ms "
                f"| worst {worst_added:+.3f} ms, best {min(added):+.3f} ms "
                f"| {'yes' if worst_added <= ADDED_P50_TARGET_MS else 'no'} |"
            )
    idle = results["gateway_idle_rss_mib"]
    out.append(
        f"| RSS idle ≤ {IDLE_RSS_TARGET_MIB} MB | {idle:.1f} MiB "
        f"| {'yes' if idle <= IDLE_RSS_TARGET_MIB else 'no'} |"
    )
    at64 = [r["gateway_rss_load_mib"] for r in gateway_rows if r["connections"] == 64]
    if at64:
        out.append(
            f"| RSS under 64 connections ≤ {LOAD_RSS_TARGET_MIB} MB | max sampled {max(at64):.1f} MiB "
            f"| {'yes' if max(at64) <= LOAD_RSS_TARGET_MIB else 'no'} |"
        )
    errors = sum(r["errors"] for r in rows)
    out.append(f"| zero errors in every row | {errors} | {'yes' if errors == 0 else 'no'} |")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 bench/report.py RESULTS.json", file=sys.stderr)
        return 2
    sys.stdout.write(render_markdown(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
