"""What the usage ledger and the metrics cost per request, in-process (no sockets).

Theory of operation: the gateway calls ``Accounting.finished`` once per
finished request, on the event loop, and the ledger's writer thread commits
the records to SQLite. Both spend the gateway process's CPU, the thread's
partly while it holds the GIL the event loop needs. To see both, requests
here are *paced* as under load: between two ``finished`` calls the main
thread does a fixed amount of pure-Python work (``--gap`` µs, about what the
gateway spends on a request), so the writer thread wakes and commits as it
would in the gateway rather than once for a whole burst. The figure is the
process CPU time (every thread) per request, minus that of the same loop with
accounting off, in µs; and the cost of ``finished`` alone, called back to
back. No clock is read per request: in a VM a clock call costs about as much
as what is measured.

Usage: ``python3 bench/accounting_cost.py [--requests 20000] [--gap 600] [--rounds 3]``;
instruction counts, repeatable on a loaded machine: ``valgrind --tool=callgrind
python3 bench/accounting_cost.py --only MODE --requests 2000 --spin-rounds 1000``
for each MODE (``off``, ``metrics``, ``ledger+metrics``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_gateway.config.schema import Config, default_document, parse_config  # noqa: E402
from llm_gateway.formats.unified import Usage  # noqa: E402
from llm_gateway.ledger.writer import LedgerWriter  # noqa: E402
from llm_gateway.metrics.families import GatewayMetrics  # noqa: E402
from llm_gateway.pipeline.accounting import Accounting, BudgetGate  # noqa: E402
from llm_gateway.server.messages import Request  # noqa: E402

PRICES = {
    "as_of": "bench",
    "models": [{"match": "*", "input": 3, "output": 15, "cache_read": 0.3, "cache_write_5m": 3.75}],
}


def config() -> Config:
    document = default_document()
    document["upstream_accounts"] = [
        {
            "id": "up-1",
            "name": "stub",
            "type": "api-key",
            "provider": "anthropic",
            "api_key": "x",
            "base_url": "http://127.0.0.1:1",
            "models": ["claude-bench"],
        }
    ]
    document["prices"] = PRICES
    return parse_config(document)


def request(i: int) -> Request:
    """A finished request with the notes the request path leaves."""
    notes: dict[str, object] = {
        "client_format": "openai-chat",
        "key_id": "key-1",
        "model": "claude-bench",
        "streamed": False,
        "attempts": 1,
        "account_id": "up-1",
        "account_name": "stub",
        "upstream_model": "claude-bench",
        "upstream_format": "anthropic-messages",
        "ttfb_ms": 1.25,
        "usage": Usage(input_tokens=30, output_tokens=120),
    }
    return Request("POST", "/v1/chat/completions", "", [], b"", f"req-{i}", notes=notes)


def spin(rounds: int) -> None:
    """Pure-Python work (no clock calls: in a VM they cost as much as what is measured)."""
    total = 0
    for i in range(rounds):
        total += i


def rounds_for(microseconds: float) -> int:
    """How many ``spin`` rounds take about ``microseconds`` here."""
    start = time.process_time()
    spin(1_000_000)
    per_round = (time.process_time() - start) / 1_000_000
    return max(1, int(microseconds / 1e6 / per_round))


def run(mode: str, requests: int, gap: int, home: Path) -> float:
    """Process CPU µs per request, with ``gap`` rounds of other work each."""
    cfg = config()
    ledger = None
    if mode == "ledger+metrics":
        ledger = LedgerWriter(home / f"usage-{time.monotonic_ns()}.sqlite3")
        ledger.start()
    accounting = Accounting(lambda: cfg, GatewayMetrics(), ledger=ledger, budgets=BudgetGate(None))
    batch = [request(i) for i in range(requests)]
    cpu0 = time.process_time()
    for req in batch:
        spin(gap)
        if mode != "off":
            accounting.finished(req, 200, 0.004)
    if ledger is not None:
        ledger.close()
    return (time.process_time() - cpu0) / requests * 1e6


def unpaced(requests: int) -> float:
    """µs per ``finished`` call (metrics only), called back to back."""
    cfg = config()
    accounting = Accounting(lambda: cfg, GatewayMetrics(), ledger=None, budgets=BudgetGate(None))
    batch = [request(i) for i in range(requests)]
    start = time.process_time()
    for req in batch:
        accounting.finished(req, 200, 0.004)
    return (time.process_time() - start) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--gap", type=float, default=600.0, help="µs of other work per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("off", "metrics", "ledger+metrics"),
        help="run this mode once and print nothing (for valgrind --tool=callgrind: the "
        "instruction counts of two modes differ by exactly the accounting's)",
    )
    parser.add_argument(
        "--spin-rounds", type=int, help="the other work as a fixed count of loop rounds"
    )
    args = parser.parse_args()
    if args.only is not None:
        with tempfile.TemporaryDirectory(prefix="accounting-cost-") as scratch:
            run(args.only, args.requests, args.spin_rounds or 1000, Path(scratch))
        return 0
    modes = ("off", "metrics", "ledger+metrics")
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    gap = args.spin_rounds or rounds_for(args.gap)
    with tempfile.TemporaryDirectory(prefix="accounting-cost-") as scratch:
        for _ in range(args.rounds):
            for mode in modes:
                cpu[mode].append(run(mode, args.requests, gap, Path(scratch)))
    off = statistics.median(cpu["off"])
    alone = statistics.median(unpaced(args.requests) for _ in range(args.rounds))
    print(f"{args.requests} requests, {args.gap:.0f} µs of other work each, {args.rounds} rounds")
    print(f"`finished` alone (metrics, no ledger), back to back: {alone:.1f} µs per call")
    print("| accounting | process CPU µs/req over off (min–max) | share of the other work |")
    print("|---|--:|--:|")
    for mode in modes[1:]:
        extras = [c - off for c in cpu[mode]]
        share = statistics.median(extras) / off
        print(
            f"| {mode} | {statistics.median(extras):.1f} ({min(extras):.1f}–{max(extras):.1f})"
            f" | {share:.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
