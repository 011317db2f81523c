#!/usr/bin/env python3
"""What the usage ledger and the metrics cost, in instructions per request (callgrind).

Theory of operation: on a machine shared with other work, CPU time per
request moves by several percent between runs, as much as what is measured
here. Instruction counts do not: the same build serving the same requests
executes the same instructions, whatever else runs. So each side runs the
same zipapp under ``valgrind --tool=callgrind`` against the nginx stub,
``off`` with ``ledger.enabled`` and ``metrics.enabled`` false and ``on`` with
both true and a price table that prices every request (as ``compare.py
--accounting-off-base`` does). Per row (path x body): a warm-up, then the
counters are zeroed (``callgrind_control --zero``), ``--requests`` requests
are sent over ``--connections`` keep-alive connections and read whole, the
ledger is given time to write them (its ``flush_interval``), and the counts
are dumped. The figure is instructions per request, and the ratio on ÷ off.

Under valgrind the gateway runs about fifty times slower, so the ledger's
writer thread, which commits at most every ``flush_interval``, writes smaller
batches than at full speed: the ledger's share here is an upper bound.

Usage: ``python3 bench/accounting_instructions.py [--paths ...] [--modes json,sse]
[--requests 400] [--connections 16] [--ledger-only] [--keep DIR]``
(``--ledger-only``: the metrics on in both sides, so the ratio is the ledger's); ``callgrind_annotate`` reads
the dumps kept with ``--keep`` (``DIR/cg-on/callgrind.PID.N``, one per row).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import payloads
from compare import _accounting
from gateway_proc import Gateway, build_zipapp, free_port
from payloads import MODELS, Route
from run import PATHS, ensure_tools
from stub_nginx import NginxStub

#: seconds the gateway may take to start under valgrind
START_TIMEOUT = 180.0


def send(port: int, path: str, body: bytes, headers: dict[str, str], count: int, conns: int) -> int:
    """``count`` requests over ``conns`` keep-alive connections; how many got 200."""
    done = [0]
    lock = threading.Lock()
    shares = [count // conns + (1 if i < count % conns else 0) for i in range(conns)]

    def worker(share: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(share):
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                with lock:
                    done[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares if share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0]


def dumped_instructions(directory: Path, pid: int) -> int:
    """The instruction count of the newest dump of ``pid``."""
    dumps = sorted(directory.glob(f"callgrind.{pid}.*"), key=lambda p: p.stat().st_mtime)
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


def start_under_callgrind(gateway: Gateway, work: Path, name: str) -> Path:
    out = work / f"cg-{name}"
    out.mkdir()
    wrapper = work / f"valgrind-{name}.sh"
    wrapper.write_text(
        "#!/bin/sh\nexec valgrind --tool=callgrind --collect-atstart=yes "
        f'--callgrind-out-file={out}/callgrind.%p "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    gateway.python = str(wrapper)  # the CLI set-up ran on the plain interpreter
    gateway.start(timeout=START_TIMEOUT)
    return out


def measure(args: argparse.Namespace, work: Path) -> list[tuple[str, str, float, float]]:
    pyz = build_zipapp(work / "gateway.pyz")
    stub = NginxStub(work / "nginx", free_port(), args.load_cpu)
    stub.start()
    paths = [p for p in PATHS if p.label in args.paths]
    used = {p.upstream for p in paths}
    accounts = [
        (f"stub-{upstream}-{mode}", upstream, stub.base_url(upstream, mode), model)
        for (upstream, mode), model in MODELS.items()
        if upstream in used
    ]
    sides: dict[str, tuple[Gateway, Path]] = {}
    rows: list[tuple[str, str, float, float]] = []
    try:
        for name, on in (("off", False), ("on", True)):
            gateway = Gateway(pyz, work / f"home-{name}", free_port(), args.gateway_cpu)
            # --ledger-only: metrics on in both, so on ÷ off is the ledger's own cost
            gateway.configure(accounts, extra=_accounting(on, on or args.ledger_only))
            sides[name] = (gateway, start_under_callgrind(gateway, work, name))
        for path in paths:
            for mode in args.modes:
                rows.append(measure_row(args, sides, path, mode))
    finally:
        for gateway, _ in sides.values():
            gateway.stop()
        stub.stop()
    return rows


def measure_row(
    args: argparse.Namespace, sides: dict[str, tuple[Gateway, Path]], path: Route, mode: str
) -> tuple[str, str, float, float]:
    model, stream = MODELS[(path.upstream, mode)], mode == "sse"
    body = payloads.client_request(path.client, model, stream)
    per_request: dict[str, float] = {}
    for name, (gateway, out) in sides.items():
        headers = {**payloads.client_headers(path.client, gateway.key), "connection": "keep-alive"}
        endpoint = payloads.endpoint(path.client)
        send(gateway.port, endpoint, body, headers, args.warmup, args.connections)
        time.sleep(1.0)  # the warm-up's ledger records written
        subprocess.run(["callgrind_control", "--zero", str(gateway.pid)], check=True,
                       capture_output=True)  # fmt: skip
        ok = send(gateway.port, endpoint, body, headers, args.requests, args.connections)
        if ok != args.requests:
            raise RuntimeError(f"{name}: {args.requests - ok} of {args.requests} requests failed")
        time.sleep(2.0)  # the ledger's writer: at most flush_interval (0.5 s), slowed down
        subprocess.run(["callgrind_control", "--dump", str(gateway.pid)], check=True,
                       capture_output=True)  # fmt: skip
        per_request[name] = dumped_instructions(out, gateway.pid) / args.requests
    off, on = per_request["off"], per_request["on"]
    print(f"{path.label:22} {mode:4} off {off:,.0f}  on {on:,.0f}  on ÷ off {on / off:.3f}",
          flush=True)  # fmt: skip
    return path.label, mode, off, on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="openai→openai,openai→anthropic")
    parser.add_argument("--modes", default="json,sse")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument(
        "--ledger-only", action="store_true", help="metrics on in both: the ledger's own cost"
    )
    parser.add_argument(
        "--keep", type=Path, help="work in this new directory and keep it (callgrind's dumps)"
    )
    args = parser.parse_args()
    args.paths = [p.replace("->", "→") for p in args.paths.split(",") if p]
    args.modes = [m for m in args.modes.split(",") if m]
    ensure_tools()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        rows = measure(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="llm-gateway-instructions-") as scratch:
            rows = measure(args, Path(scratch))
    print("\n| path | body | instructions/req off | on | **on ÷ off** |")
    print("|---|---|--:|--:|--:|")
    for label, mode, off, on in rows:
        body = "stream" if mode == "sse" else "json"
        print(f"| {label} | {body} | {off:,.0f} | {on:,.0f} | **{on / off:.3f}** |")
    mean = statistics.geometric_mean(on / off for _, _, off, on in rows)
    print(f"\nGeometric mean of on ÷ off over {len(rows)} rows: **{mean:.3f}** "
          f"({args.requests} requests per row and side, {args.connections} connections; "
          f"Python {sys.version.split()[0]})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
