#!/usr/bin/env python3
"""Run the benchmark matrix and write a markdown table (see bench/README.md).

Theory of operation: one run sets up three processes on a two-core machine,

* the upstream stub (nginx, ``stub_nginx.py``) and the load generator (wrk)
  on the *load core* (CPU 1 by default),
* the gateway, built from this checkout as a zipapp and configured through
  its CLI (``gateway_proc.py``), alone on the *gateway core* (CPU 0),

then measures every cell of the matrix: client format x upstream format x
non-streaming/streaming x connection counts. Each cell is one or two
measurements:

* *direct*: the upstream-format request sent straight to the stub (the
  baseline; one per upstream format, mode and connection count, shared by
  the two paths that end at that upstream and run right before them);
* *gateway*: the client-format request sent through the gateway.

A measurement is: a few requests checked in full (``checks.py``), a short
unmeasured warm-up with the same connection count, then wrk for the row's
duration while CPU times (/proc) are read before and after and the
gateway's resident set is sampled. Results go to a JSON file and a markdown
table (``report.py``) under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import payloads
from gateway_proc import REPO, Gateway, build_zipapp, free_port
from loadgen import WrkResult, probe, run_wrk
from payloads import ANTHROPIC, FORMATS, GEMINI, MODELS, OPENAI, Route
from procstat import RssSampler, cpu_seconds, cpu_times, memory_kib
from report import render_markdown
from stub_nginx import NginxStub

RESULTS = Path(__file__).resolve().parent / "results"
PATHS = (
    Route(OPENAI, OPENAI),
    Route(ANTHROPIC, ANTHROPIC),
    Route(OPENAI, ANTHROPIC),
    Route(ANTHROPIC, OPENAI),
    Route(OPENAI, GEMINI),
    Route(ANTHROPIC, GEMINI),
)


@dataclass
class Measurement:
    """One wrk run with what /proc said around it."""

    target: str  # "gateway" or "direct"
    path: str
    mode: str
    connections: int
    variant: str = ""
    probe_problems: list[str] = field(default_factory=list)
    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    socket_errors: int = 0
    non2xx: int = 0
    bad_bodies: int = 0
    #: gateway rows: the gateway's CPU per completed request; direct rows: nginx's
    cpu_ms_per_req: float = 0.0
    #: nginx worker CPU per request in this run (gateway rows too: the stub's share)
    stub_cpu_ms_per_req: float = 0.0
    #: wrk's CPU per request: with the stub's, what the load core spends per request
    wrk_cpu_ms_per_req: float = 0.0
    gateway_rss_load_mib: float = 0.0
    gateway_hwm_mib: float = 0.0
    #: utilisation of the gateway's core, of which the gateway used ``gateway_core_own``
    gateway_core_busy: float = 0.0
    gateway_core_own: float = 0.0
    load_core_busy: float = 0.0
    wrk: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non2xx + self.bad_bodies + len(self.probe_problems)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.stub = NginxStub(
            work / "nginx",
            free_port(),
            args.load_cpu,
            sse_write_bytes=0 if args.sse_writes == "whole" else 256,
        )
        self.gateway: Gateway | None = None
        self.measurements: list[Measurement] = []

    # -- set-up -------------------------------------------------------------

    def start(self) -> None:
        self.stub.start()
        pyz = build_zipapp(self.work / "llm-gateway.pyz", self.args.python)
        gateway = Gateway(
            pyz, self.work / "home", free_port(), self.args.gateway_cpu, self.args.python
        )
        upstreams = [
            (f"stub-{upstream}-{mode}", upstream, self.stub.base_url(upstream, mode), model)
            for (upstream, mode), model in MODELS.items()
        ]
        gateway.configure(upstreams)
        gateway.start()
        self.gateway = gateway

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.stub.stop()

    # -- the matrix -----------------------------------------------------------

    def run(self) -> dict[str, Any]:
        assert self.gateway is not None
        time.sleep(1.0)
        idle_rss, _ = memory_kib(self.gateway.pid)
        started = time.time()
        load_before = os.getloadavg()
        paths = [p for p in PATHS if not self.args.paths or p.label in self.args.paths]
        for upstream in FORMATS:
            for mode in self.args.modes:
                for conns in self.args.connections:
                    users = [p for p in paths if p.upstream == upstream]
                    if not users:
                        continue
                    self._direct(upstream, mode, conns)
                    for path in users:
                        self._through_gateway(path, mode, conns)
                    if (
                        mode == "sse"
                        and upstream == OPENAI
                        and self.args.usage_rows
                        and any(p.same_format for p in users)
                    ):
                        self._through_gateway(users[0], mode, conns, variant="usage-added")
        rss_end, hwm_end = memory_kib(self.gateway.pid)
        return {
            "meta": self._meta(started, load_before),
            "gateway_idle_rss_mib": idle_rss / 1024,
            "gateway_rss_end_mib": rss_end / 1024,
            "gateway_hwm_end_mib": hwm_end / 1024,
            "measurements": [{**asdict(m), "errors": m.errors} for m in self.measurements],
        }

    def _direct(self, upstream: str, mode: str, conns: int) -> None:
        model = MODELS[(upstream, mode)]
        stream = mode == "sse"
        body = payloads.client_request(upstream, model, stream)
        m = Measurement("direct", f"{upstream}", mode, conns)
        self._measure(
            m,
            url=self.stub.url(upstream, mode),
            body=body,
            headers=payloads.client_headers(upstream, f"sk-bench-stub-{upstream}-{mode}"),
            client=upstream,
            model=model,
            gateway_pid=None,
        )

    def _through_gateway(self, path: Route, mode: str, conns: int, variant: str = "") -> None:
        assert self.gateway is not None
        model = MODELS[(path.upstream, mode)]
        stream = mode == "sse"
        if variant == "usage-added":
            body = payloads.usage_option_request(model)
        else:
            body = payloads.client_request(path.client, model, stream)
        m = Measurement("gateway", path.label, mode, conns, variant)
        self._measure(
            m,
            url=self.gateway.url + payloads.endpoint(path.client),
            body=body,
            headers=payloads.client_headers(path.client, self.gateway.key),
            client=path.client,
            model=model,
            gateway_pid=self.gateway.pid,
        )

    def _measure(
        self,
        m: Measurement,
        *,
        url: str,
        body: bytes,
        headers: dict[str, str],
        client: str,
        model: str,
        gateway_pid: int | None,
    ) -> None:
        stream = m.mode == "sse"
        label = f"{m.target:7} {m.path:22} {m.mode:4} {m.variant:11} c={m.connections:<3}"
        print(label, end=" ", flush=True)
        m.probe_problems = probe(
            url, body, headers, client=client, stream=stream, model=model, count=self.args.probes
        )
        body_file = self.work / f"body-{client}-{m.mode}-{m.variant or 'std'}.json"
        body_file.write_bytes(body)
        markers = payloads.wrk_markers(client, stream)
        wrk_args = {"connections": m.connections, "cpu": self.args.load_cpu}
        run_wrk(url, body_file, headers, markers, duration=self.args.warmup, **wrk_args)
        stub_pids = self.stub.worker_pids()
        watched = gateway_pid or os.getpid()
        gw0 = cpu_seconds(gateway_pid) if gateway_pid else 0.0
        stub0 = sum(cpu_seconds(pid) for pid in stub_pids)
        cpus0 = cpu_times()
        with RssSampler(watched) as sampler:
            result = run_wrk(
                url, body_file, headers, markers, duration=self.args.duration, **wrk_args
            )
        cpus1 = cpu_times()
        gw1 = cpu_seconds(gateway_pid) if gateway_pid else 0.0
        stub1 = sum(cpu_seconds(pid) for pid in stub_pids)
        self._record(m, result, gw1 - gw0, stub1 - stub0)
        m.gateway_core_busy = cpus0.busy_fraction(cpus1, self.args.gateway_cpu)
        m.load_core_busy = cpus0.busy_fraction(cpus1, self.args.load_cpu)
        if gateway_pid:
            _, hwm = memory_kib(gateway_pid)
            m.gateway_rss_load_mib = sampler.peak_kib / 1024
            m.gateway_hwm_mib = hwm / 1024
            m.gateway_core_own = (gw1 - gw0) / max(result.duration_s, 1e-9)
        self.measurements.append(m)
        print(
            f"{m.rps:9.0f} req/s  p50 {m.p50_ms:7.3f} ms  p99 {m.p99_ms:7.3f} ms  "
            f"cpu {m.cpu_ms_per_req:6.3f} ms/req  errors {m.errors}"
            + (f"  PROBE: {m.probe_problems[0]}" if m.probe_problems else ""),
            flush=True,
        )

    @staticmethod
    def _record(m: Measurement, r: WrkResult, gateway_cpu: float, stub_cpu: float) -> None:
        m.requests, m.duration_s, m.rps = r.requests, r.duration_s, r.rps
        m.p50_ms, m.p90_ms, m.p99_ms = r.p50_ms, r.p90_ms, r.p99_ms
        m.mean_ms, m.max_ms = r.mean_ms, r.max_ms
        m.socket_errors, m.non2xx, m.bad_bodies = r.socket_errors, r.non2xx, r.bad_bodies
        n = max(r.requests, 1)
        m.stub_cpu_ms_per_req = stub_cpu * 1000 / n
        m.wrk_cpu_ms_per_req = r.cpu_s * 1000 / n
        m.cpu_ms_per_req = (gateway_cpu if m.target == "gateway" else stub_cpu) * 1000 / n
        m.wrk = r.raw

    def _meta(self, started: float, load_before: tuple[float, float, float]) -> dict[str, Any]:
        return {
            "date": datetime.datetime.fromtimestamp(started)
            .astimezone()
            .isoformat(timespec="seconds"),
            "command": " ".join(["python3", "bench/run.py", *self.args.argv]),
            "elapsed_s": round(time.time() - started, 1),
            "duration_s": self.args.duration,
            "warmup_s": self.args.warmup,
            "sse_writes": self.args.sse_writes,
            "cpu_model": _cpu_model(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": _version([self.args.python, "--version"]),
            "nginx": _version(["nginx", "-v"]),
            "wrk": _version(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "",
            "git": _version(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
            "gateway_cpu": self.args.gateway_cpu,
            "load_cpu": self.args.load_cpu,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip()


def ensure_tools() -> None:
    """nginx and wrk from Debian's packages (installed when missing), taskset from util-linux."""
    missing = [name for name in ("nginx", "wrk") if shutil.which(name) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise SystemExit(f"missing {', '.join(missing)} and no apt-get to install them")
        print(f"installing {' '.join(missing)} from Debian's packages", flush=True)
        root = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*root, "apt-get", "update", "-q"], check=True)
        subprocess.run([*root, "apt-get", "install", "-y", "-q", *missing], check=True)
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is missing")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the benchmark needs two CPUs: one for the gateway, one for load")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s rows (development)")
    parser.add_argument("--duration", type=int, help="seconds per measured row (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured seconds before each row")
    parser.add_argument(
        "--connections", default="1,16,64", help="comma-separated (default 1,16,64)"
    )
    parser.add_argument(
        "--paths", default="", help="e.g. 'openai→anthropic,openai→gemini' (default: all six)"
    )
    parser.add_argument("--modes", default="json,sse", help="json, sse or both (default)")
    parser.add_argument(
        "--no-usage-rows",
        dest="usage_rows",
        action="store_false",
        help="skip the extra OpenAI stream rows without stream_options (gateway adds it)",
    )
    parser.add_argument(
        "--sse-writes",
        choices=("pieces", "whole"),
        default="pieces",
        help="stub writes streams in 256-byte pieces (default) or whole, in one sendfile",
    )
    parser.add_argument("--probes", type=int, default=3, help="checked requests before each row")
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter that builds and runs the gateway"
    )
    parser.add_argument(
        "--out", type=Path, help="markdown output (default bench/results/bench-DATE.md)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    args.argv = argv
    args.duration = args.duration or (3 if args.quick else 10)
    args.connections = [int(c) for c in args.connections.split(",") if c]
    args.paths = [p.replace("->", "→") for p in args.paths.split(",") if p]
    args.modes = [m for m in args.modes.split(",") if m]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ensure_tools()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or RESULTS / f"bench-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-"))
    bench = Bench(args, work)
    try:
        bench.start()
        results = bench.run()
    finally:
        bench.stop()
        logs = out.with_suffix(".logs")
        logs.mkdir(exist_ok=True)
        for log in (work / "home" / "gateway.log", work / "nginx" / "error.log"):
            if log.exists():
                shutil.copy(log, logs / log.name)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    out.write_text(render_markdown(results))
    print(f"\nwrote {out} and {out.with_suffix('.json')}")
    print(render_markdown(results))
    failed = sum(m["errors"] for m in results["measurements"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
