#!/usr/bin/env python3
"""One huge request: how long do other clients wait while the gateway converts it?

Theory of operation: the gateway (zipapp, pinned to the gateway core) routes
to the nginx stub (on the load core), as in ``run.py``. One client sends a
single OpenAI chat request for the stub's Anthropic model carrying
``--messages`` short user messages (800,000 make about 27 MB, under the
gateway's default 32 MiB body limit), so the gateway must parse, convert and
re-encode all of it. Meanwhile a second client asks ``GET /health`` on a fresh
connection every 20 ms and records how long each answer took. Before the big
request, the same prober runs alone for ``--idle`` seconds: that is the
baseline. The report gives the big request's status and duration, how many
``/health`` answers came back while it ran, and their median and worst
latency beside the idle ones.

A gateway that converts on the event loop answers nobody until the
conversion is done; one that converts elsewhere keeps answering.

Usage: ``python3 bench/big_request.py [--messages 800000] [--pyz PATH] [--idle 2]``
(``--pyz`` measures a given zipapp, for example one built from an older
commit; by default the working tree is built).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import payloads
from gateway_proc import Gateway, build_zipapp, free_port
from payloads import ANTHROPIC, MODELS, OPENAI
from run import ensure_tools
from stub_nginx import NginxStub

GATEWAY_CPU, LOAD_CPU = 0, 1
PROBE_INTERVAL = 0.02


def _get(port: int, path: str) -> float:
    """Seconds for one ``GET path`` on a new connection (it must answer 200)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
    finally:
        connection.close()
    return time.monotonic() - started


def _probe(port: int, until: threading.Event | float) -> list[float]:
    """``/health`` latencies until the event is set (or the deadline passes)."""
    latencies = []
    while not (until.is_set() if isinstance(until, threading.Event) else time.monotonic() > until):
        latencies.append(_get(port, "/health"))
        time.sleep(PROBE_INTERVAL)
    return latencies


def _big_body(messages: int) -> bytes:
    model = MODELS[(ANTHROPIC, "json")]
    message = {"role": "user", "content": "a"}
    return json.dumps({"model": model, "max_tokens": 16, "messages": [message] * messages}).encode()


def measure(gateway: Gateway, messages: int, idle: float) -> dict[str, object]:
    idle_latencies = _probe(gateway.port, time.monotonic() + idle)
    body = _big_body(messages)
    done = threading.Event()
    outcome: dict[str, object] = {}

    def send() -> None:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=300)
        try:
            headers = payloads.client_headers(OPENAI, gateway.key)
            connection.request("POST", payloads.endpoint(OPENAI), body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            outcome["status"] = response.status
            outcome["answer"] = answer[:200].decode(errors="replace")
        finally:
            connection.close()
            outcome["seconds"] = time.monotonic() - started
            done.set()

    sender = threading.Thread(target=send)
    sender.start()
    busy_latencies = _probe(gateway.port, done)
    sender.join()
    return {
        "mb": len(body) / 1e6,
        "status": outcome.get("status"),
        "answer": outcome.get("answer"),
        "seconds": outcome["seconds"],
        "idle": idle_latencies,
        "busy": busy_latencies,
    }


def _ms(values: list[float], pick: str) -> str:
    if not values:
        return "–"
    value = statistics.median(values) if pick == "p50" else max(values)
    return f"{value * 1000:.1f}"


def report(label: str, result: dict[str, object]) -> str:
    idle, busy = result["idle"], result["busy"]
    assert isinstance(idle, list) and isinstance(busy, list)
    return "\n".join(
        [
            f"{label}: one request of {result['mb']:.1f} MB (OpenAI chat to an Anthropic model): "
            f"status {result['status']} after {result['seconds']:.2f} s",
            "",
            "| /health | answers | p50 ms | worst ms |",
            "|---|--:|--:|--:|",
            f"| alone, before | {len(idle)} | {_ms(idle, 'p50')} | {_ms(idle, 'max')} |",
            f"| while the big request ran | {len(busy)} | {_ms(busy, 'p50')} "
            f"| {_ms(busy, 'max')} |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=800_000)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of baseline probing")
    parser.add_argument("--pyz", type=Path, help="a built zipapp (default: build the tree)")
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="llm-gateway-big-") as scratch:
        work = Path(scratch)
        pyz = args.pyz or build_zipapp(work / "llm-gateway.pyz")
        stub = NginxStub(work / "nginx", free_port(), LOAD_CPU)
        stub.start()
        gateway = Gateway(pyz, work / "home", free_port(), GATEWAY_CPU)
        try:
            model = MODELS[(ANTHROPIC, "json")]
            gateway.configure([("stub", ANTHROPIC, stub.base_url(ANTHROPIC, "json"), model)])
            gateway.start()
            result = measure(gateway, args.messages, args.idle)
        finally:
            gateway.stop()
            stub.stop()
    print(report(str(args.pyz or "working tree"), result))
    if result["status"] != 200:
        print(f"\nthe big request failed: {result['answer']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
