"""Throughput with ``server start --workers 1`` and ``--workers 2``, side by side.

The same OpenAI→OpenAI non-streaming request as the matrix's first row, at 64
connections, against the nginx stub. The gateway may use both cores
(``taskset -c 0,1``); nginx and wrk stay on CPU 1, as in ``run.py``, so with
two workers the second one shares its core with the load generator and the
stub: on a 2-core machine the ratio is a lower bound of what two free cores
give. The table reports both cores' busy share so that is visible.

``--limited`` gives the bench's key request and token limits far above what
it sends, so every request also takes a unit from its buckets: in the
process with one worker, in the workers' shared table with two.

Usage: ``python3 bench/workers.py [--duration 10] [--connections 64] [--limited]``
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import payloads
from gateway_proc import Gateway, build_zipapp, free_port
from loadgen import probe, run_wrk
from payloads import MODELS, OPENAI
from procstat import cpu_times
from stub_nginx import NginxStub

LOAD_CPU = 1


class WorkersGateway(Gateway):
    """The bench's gateway process, started with ``--workers N`` on both cores."""

    workers = 1

    def start(self, timeout: float = 20.0) -> None:
        command = ["taskset", "-c", "0,1", self.python, str(self.pyz), "server", "start"]
        command += ["--workers", str(self.workers)]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self._process.pid
        self._wait_healthy(timeout)
        time.sleep(1.0)  # every worker up, not only the first to answer


def measure(
    work: Path, stub: NginxStub, workers: int, args: argparse.Namespace
) -> dict[str, float]:
    model = MODELS[(OPENAI, "json")]
    gateway = WorkersGateway(work / "llm-gateway.pyz", work / f"home-{workers}", free_port(), 0)
    gateway.workers = workers
    gateway.configure(
        [("stub-openai-json", OPENAI, stub.base_url(OPENAI, "json"), model)],
        max_connections=4096,
        max_connections_per_upstream=512,
        key_options=("--rpm", "100000000", "--tpm", "100000000000") if args.limited else (),
    )
    gateway.start()
    try:
        url = gateway.url + payloads.endpoint(OPENAI)
        body = payloads.client_request(OPENAI, model, False)
        headers = payloads.client_headers(OPENAI, gateway.key)
        problems = probe(url, body, headers, client=OPENAI, stream=False, model=model, count=3)
        if problems:
            raise SystemExit(f"wrong answers: {problems[0]}")
        body_file = work / "body.json"
        body_file.write_bytes(body)
        markers = payloads.wrk_markers(OPENAI, False)
        common = {"connections": args.connections, "cpu": LOAD_CPU}
        run_wrk(url, body_file, headers, markers, duration=1, **common)
        before = cpu_times()
        result = run_wrk(url, body_file, headers, markers, duration=args.duration, **common)
        after = cpu_times()
        return {
            "rps": result.rps,
            "errors": float(result.errors),
            "p50": result.p50_ms,
            "core0": before.busy_fraction(after, 0) * 100,
            "core1": before.busy_fraction(after, 1) * 100,
        }
    finally:
        gateway.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--limited", action="store_true", help="a key with rpm and tpm limits")
    args = parser.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run python3 bench/run.py once (it installs it)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="llm-gateway-workers-") as scratch:
        work = Path(scratch)
        stub = NginxStub(work / "nginx", free_port(), LOAD_CPU)
        stub.start()
        try:
            build_zipapp(work / "llm-gateway.pyz")
            one = measure(work, stub, 1, args)
            two = measure(work, stub, 2, args)
        finally:
            stub.stop()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    print(f"`python3 bench/workers.py --duration {args.duration} --connections "
          f"{args.connections}{' --limited' if args.limited else ''}` ({when}), OpenAI→OpenAI JSON\n")  # fmt: skip
    print("| workers | req/s | p50 ms | errors | CPU 0 busy % | CPU 1 busy % (also stub + wrk) |")
    print("|--:|--:|--:|--:|--:|--:|")
    for n, row in ((1, one), (2, two)):
        print(f"| {n} | {row['rps']:,.0f} | {row['p50']:.2f} | {row['errors']:.0f} | "
              f"{row['core0']:.0f} | {row['core1']:.0f} |")  # fmt: skip
    print(f"\n2 workers / 1 worker: {two['rps'] / one['rps']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
