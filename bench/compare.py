#!/usr/bin/env python3
"""Two builds of the gateway measured interleaved, row by row: new ÷ base CPU per request.

Theory of operation: this machine is a shared VM whose speed drifts by up to a
third between runs minutes apart, so figures from two separate runs of
``run.py`` cannot be compared. Here both builds run at once, each measured a
few seconds after the other, so both see the same machine and only their
*ratio* is reported.

1. *Builds.* BASE (and NEW, when given) is a git ref: its tree is exported with
   ``git archive`` into a scratch directory and built by that tree's own
   ``build_zipapp.py``. Without NEW, the working tree of this checkout is built
   as it is (``gateway_proc.build_zipapp``), labelled ``git describe --dirty``.
2. *Processes.* One nginx stub (``stub_nginx.py``) on the load core, both
   gateways on the gateway core, each with its own home directory and port and
   the configuration ``run.py`` uses (the four stub accounts, one key). Only
   one gateway is under load at a time; the idle one costs next to nothing.
3. *A row* (path x body x connections): each gateway answers one request
   checked in full (``loadgen.probe``) and gets 1 s of unmeasured wrk, then
   ``--rounds`` rounds each measure both, one wrk run of ``--duration`` s per
   build, with the gateway's CPU time (``/proc``) read around it. The order
   alternates (base, new; new, base; ...): drift within a round, and any
   advantage of going first or second (a warmer cache, a quieter neighbour),
   falls on both builds alike instead of always on the same one.
4. *Report.* Per row the median CPU ms per completed request of each build
   (with min–max over the rounds), their ratio new ÷ base, req/s and errors;
   then the geometric mean of the ratios over all rows. Below 1 means the new
   build spends less CPU per request.

What the usage ledger and the metrics cost: ``compare.py HEAD HEAD
--accounting-off-base`` runs the same build twice, the base with
``ledger.enabled`` and ``metrics.enabled`` false, the new one with both on and
a price table that prices every request; the ratio is on ÷ off.
``--ledger-off-base`` turns only the ledger off in the base, so the ratio is
what the ledger alone costs.

What the redis state backend costs: ``compare.py HEAD HEAD --redis-new auto``
runs the same build twice, both with a gateway key limited (so every request
checks and charges its buckets), the base on the local backend and the new
one on ``state.backend: redis`` (``auto``: a ``redis-server`` started on the
load core for the run; or a ``redis://`` URL). The new build is built with
``--with redis``. Besides the CPU ratio, each row reports the median p50
latency of both and the p50 the new one adds; the Redis server's own CPU is
not counted in the gateway's.

The same build under two interpreters is a comparison too: ``compare.py HEAD
HEAD --new-python python3.13`` measures what a newer Python buys (the zipapp is
pure Python, so one build runs on any 3.10+).

Usage: ``python3 bench/compare.py BASE [NEW] [--paths ...] [--modes json,sse]
[--connections 16] [--duration 4] [--rounds 3] [--base-python PY] [--new-python PY]
[--redis-new auto|URL] [--out PATH.md]``
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import payloads
from gateway_proc import REPO, Gateway, build_zipapp, free_port
from loadgen import probe, run_wrk
from payloads import MODELS, Route
from procstat import cpu_seconds
from run import PATHS, RESULTS, ensure_tools
from stub_nginx import NginxStub


@dataclass
class Build:
    """One side of the comparison: a built zipapp and, once started, its gateway."""

    name: str  # "base" or "new"
    ref: str | None  # None: the working tree
    commit: str
    python: str  # the interpreter that runs this build's gateway
    version: str  # what ``python --version`` says
    gateway: Gateway | None = None

    @property
    def label(self) -> str:
        return f"`{self.ref or 'working tree'}` = `{self.commit}` on {self.version}"


@dataclass
class Side:
    """One build's figures for one row."""

    cpu_ms: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass(frozen=True)
class Row:
    path: str
    mode: str
    connections: int
    base: Side
    new: Side

    @property
    def ratio(self) -> float:
        return statistics.median(self.new.cpu_ms) / statistics.median(self.base.cpu_ms)


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def python_version(python: str) -> str:
    """``Python 3.x.y`` as ``python`` reports it; exits when it cannot run."""
    try:
        done = subprocess.run([python, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SystemExit(f"cannot run {python}: {exc.strerror}") from None
    if done.returncode != 0:
        raise SystemExit(f"{python} --version failed: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(name: str, ref: str | None, python: str) -> Build:
    version = python_version(python)
    if ref is None:
        return Build(name, None, _git("describe", "--always", "--dirty"), python, version)
    return Build(name, ref, _git("rev-parse", "--verify", f"{ref}^{{commit}}"), python, version)


def build(side: Build, work: Path, extras: tuple[str, ...] = ()) -> Path:
    """The zipapp of ``side``: the working tree's, or the one its exported tree builds."""
    pyz = work / f"{side.name}.pyz"
    if side.ref is None:
        return build_zipapp(pyz, extras=extras)
    tree = work / f"tree-{side.name}"
    tree.mkdir()
    tarball = subprocess.run(
        ["git", "-C", str(REPO), "archive", side.commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=tarball, check=True)
    command = [sys.executable, str(tree / "build_zipapp.py"), "--output", str(pyz)]
    command += [arg for extra in extras for arg in ("--with", extra)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return pyz


def measure_row(
    args: argparse.Namespace, work: Path, builds: list[Build], path: Route, mode: str, conns: int
) -> Row:
    model, stream = MODELS[(path.upstream, mode)], mode == "sse"
    body = payloads.client_request(path.client, model, stream)
    body_file = work / f"body-{path.client}-{mode}.json"
    body_file.write_bytes(body)
    wrk = {
        "markers": payloads.wrk_markers(path.client, stream),
        "connections": conns,
        "cpu": args.load_cpu,
    }
    sides = {b.name: Side() for b in builds}
    targets = {}
    for b in builds:
        assert b.gateway is not None
        url = b.gateway.url + payloads.endpoint(path.client)
        headers = payloads.client_headers(path.client, b.gateway.key)
        targets[b.name] = (url, headers, b.gateway.pid)
        problems = probe(
            url, body, headers, client=path.client, stream=stream, model=model, count=1
        )
        sides[b.name].errors += len(problems)
        for problem in problems:
            print(f"  {b.name}: PROBE: {problem}", flush=True)
        run_wrk(url, body_file, headers, duration=1, **wrk)  # warm-up
    print(f"{path.label:22} {mode:4} c={conns:<3}", end="", flush=True)
    for round_ in range(args.rounds):
        order = builds if round_ % 2 == 0 else builds[::-1]
        for b in order:
            url, headers, pid = targets[b.name]
            cpu0 = cpu_seconds(pid)
            result = run_wrk(url, body_file, headers, duration=args.duration, **wrk)
            cpu = cpu_seconds(pid) - cpu0
            side = sides[b.name]
            side.cpu_ms.append(cpu * 1000 / max(result.requests, 1))
            side.rps.append(result.rps)
            side.p50_ms.append(result.p50_ms)
            side.errors += result.errors
            print(f"  {b.name} {side.cpu_ms[-1]:.3f}", end="", flush=True)
    row = Row(path.label, mode, conns, sides["base"], sides["new"])
    print(f"  → new ÷ base {row.ratio:.3f}", flush=True)
    return row


#: a key limit no bench run reaches: every request is checked and charged, none denied
BENCH_LIMITS = ("--rpm", "100000000", "--tpm", "100000000000")


def start_redis(work: Path, cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    """A ``redis-server`` without persistence on CPU ``cpu`` and a free loopback port."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise SystemExit("--redis-new auto needs redis-server (apt install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        ["taskset", "-c", str(cpu), binary, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"redis://127.0.0.1:{port}/0"


def run(args: argparse.Namespace, work: Path, builds: list[Build]) -> list[Row]:
    pyzs = [
        build(b, work, ("redis",) if args.redis_new and b.name == "new" else ()) for b in builds
    ]
    redis_process: subprocess.Popen[bytes] | None = None
    redis_url = args.redis_new
    if redis_url == "auto":
        redis_process, redis_url = start_redis(work, args.load_cpu)
    stub = NginxStub(work / "nginx", free_port(), args.load_cpu)
    stub.start()
    try:
        paths = [p for p in PATHS if p.label in args.paths]
        # only the upstreams the rows use: an older build may not know the others
        used = {p.upstream for p in paths}
        accounts = [
            (f"stub-{upstream}-{mode}", upstream, stub.base_url(upstream, mode), model)
            for (upstream, mode), model in MODELS.items()
            if upstream in used
        ]
        for b, pyz in zip(builds, pyzs, strict=True):
            gateway = Gateway(pyz, work / f"home-{b.name}", free_port(), args.gateway_cpu, b.python)
            base = b.name == "base"
            ledger = not (base and (args.accounting_off_base or args.ledger_off_base))
            metrics = not (base and args.accounting_off_base)
            extra = None if args.default_config else _accounting(ledger, metrics)
            limits: tuple[str, ...] = ()
            if redis_url:
                limits = BENCH_LIMITS
                if b.name == "new":
                    extra = {**(extra or {}), "state": {"backend": "redis", "url": redis_url}}
            gateway.configure(accounts, log_level=args.log_level, extra=extra, key_options=limits)
            gateway.start()
            b.gateway = gateway
        return [
            measure_row(args, work, builds, path, mode, conns)
            for path in paths
            for mode in args.modes
            for conns in args.connections
        ]
    finally:
        for b in builds:
            if b.gateway is not None:
                b.gateway.stop()
        stub.stop()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(30)


def _accounting(ledger: bool, metrics: bool) -> dict[str, object]:
    """The ledger and the metrics each on or off (every stub model priced)."""
    prices = {"as_of": "bench", "models": [{"match": "*", "input": 3, "output": 15,
                                            "cache_read": 0.3, "cache_write_5m": 3.75}]}  # fmt: skip
    return {"ledger": {"enabled": ledger}, "metrics": {"enabled": metrics}, "prices": prices}


def _spread(values: list[float]) -> str:
    return f"**{statistics.median(values):.3f}** ({min(values):.3f}–{max(values):.3f})"


def report(args: argparse.Namespace, builds: list[Build], rows: list[Row], date: str) -> str:
    base, new = builds
    command = " ".join(["python3", "bench/compare.py", *args.argv])
    lines = [
        f"Comparison of {date}: `{command}`",
        "",
        f"base {base.label}, new {new.label}; both gateways on CPU "
        f"{args.gateway_cpu}, nginx + wrk on CPU {args.load_cpu}; per row {args.rounds} "
        f"rounds of {args.duration} s per build, order alternating, after a checked "
        "request and 1 s of warm-up each.",
        "",
        "The result is the ratio new ÷ base of gateway CPU per request (below 1: the new "
        "build is cheaper), measured interleaved on the same machine; the absolute figures "
        "move with this shared VM's speed and are not comparable with other runs.",
        "",
        "| path | body | conns | base CPU ms/req (min–max) | new CPU ms/req (min–max) "
        "| **new ÷ base** | req/s base / new | p50 ms base / new (added) | errors base / new |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        body = "stream" if r.mode == "sse" else "json"
        rps = f"{statistics.median(r.base.rps):,.0f} / {statistics.median(r.new.rps):,.0f}"
        p50_base, p50_new = statistics.median(r.base.p50_ms), statistics.median(r.new.p50_ms)
        p50 = f"{p50_base:.2f} / {p50_new:.2f} ({p50_new - p50_base:+.2f})"
        lines.append(
            f"| {r.path} | {body} | {r.connections} | {_spread(r.base.cpu_ms)} "
            f"| {_spread(r.new.cpu_ms)} | **{r.ratio:.3f}** | {rps} | {p50} "
            f"| {r.base.errors} / {r.new.errors} |"
        )
    if rows:
        mean = statistics.geometric_mean(r.ratio for r in rows)
        p50_ratio = statistics.geometric_mean(
            statistics.median(r.new.p50_ms) / statistics.median(r.base.p50_ms) for r in rows
        )
        lines += [
            "",
            f"Geometric mean of new ÷ base over {len(rows)} rows: **{mean:.3f}** CPU per "
            f"request, **{p50_ratio:.3f}** p50 latency",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git ref of the baseline build")
    parser.add_argument("new", nargs="?", help="git ref of the new build (default: working tree)")
    parser.add_argument("--paths", default="", help="e.g. 'openai→anthropic' (default: all four)")
    parser.add_argument("--modes", default="json,sse", help="json, sse or both (default)")
    parser.add_argument("--connections", default="16", help="comma-separated (default 16)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per build and row")
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument(
        "--log-level", default="warning", help="the gateways' logging.level (info: access logs)"
    )
    parser.add_argument(
        "--base-python", default=sys.executable, help="interpreter for the base build's gateway"
    )
    parser.add_argument(
        "--new-python", default=sys.executable, help="interpreter for the new build's gateway"
    )
    parser.add_argument(
        "--default-config",
        action="store_true",
        help="give both builds only the accounts and the key, each build's defaults otherwise "
        "(for a base that predates the ledger and metrics sections)",
    )
    parser.add_argument(
        "--accounting-off-base",
        action="store_true",
        help="the base gateway runs without the usage ledger and metrics (compare HEAD HEAD)",
    )
    parser.add_argument(
        "--ledger-off-base",
        action="store_true",
        help="the base gateway runs without the usage ledger, metrics on in both (compare HEAD HEAD)",
    )
    parser.add_argument(
        "--redis-new",
        metavar="auto|URL",
        help="the new gateway on state.backend redis (auto: start a redis-server), both with "
        "a limited key (compare HEAD HEAD)",
    )
    parser.add_argument("--out", type=Path, help="default bench/results/compare-DATE.md")
    args = parser.parse_args(argv)
    args.argv = argv
    labels = [p.label for p in PATHS]
    args.paths = [p.replace("->", "→") for p in args.paths.split(",") if p] or labels
    args.modes = [m for m in args.modes.split(",") if m]
    args.connections = [int(c) for c in args.connections.split(",") if c]
    unknown = [p for p in args.paths if p not in labels] + [
        m for m in args.modes if m not in payloads.MODES
    ]
    if unknown:
        parser.error(f"unknown path or mode: {', '.join(unknown)}")
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds and --duration must be at least 1")
    return args


def main() -> int:
    args = parse_args(sys.argv[1:])
    ensure_tools()
    builds = [
        resolve("base", args.base, args.base_python),
        resolve("new", args.new, args.new_python),
    ]
    for b in builds:
        print(f"{b.name}: {b.label}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    now = datetime.datetime.now().astimezone()
    out: Path = args.out or RESULTS / f"compare-{now.strftime('%Y%m%d-%H%M%S')}.md"
    with tempfile.TemporaryDirectory(prefix="llm-gateway-compare-") as scratch:
        rows = run(args, Path(scratch), builds)
    text = report(args, builds, rows, now.isoformat(timespec="seconds"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwrote {out}\n\n{text}")
    return 1 if any(r.base.errors or r.new.errors for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
