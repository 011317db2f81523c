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

``--concurrent N`` measures memory instead: N such requests at once (about
30 MB each with ``--messages 880000``, or ``--messages 1900 --message-bytes
16000`` for fewer, longer messages, as in an agent's long session) against a small Python upstream (no
nginx needed), and the gateway process's peak resident memory (``VmHWM``)
beside its memory before and after. A gateway that converts every large
request at once holds all their parsed copies together; one that bounds the
large requests in flight by a memory budget (``proxy.large_request_memory``)
makes the rest wait.

Usage: ``python3 bench/big_request.py [--messages 800000] [--pyz PATH] [--idle 2]``
``python3 bench/big_request.py --concurrent 8 --messages 880000``
(``--pyz`` measures a given zipapp, for example one built from an older
commit; by default the working tree is built).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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


def _big_body(messages: int, message_bytes: int = 1) -> bytes:
    model = MODELS[(ANTHROPIC, "json")]
    message = {"role": "user", "content": "a" * message_bytes}
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


# --- memory: many big requests at once ----------------------------------------------


def _memory_kib(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


class _Upstream(http.server.BaseHTTPRequestHandler):
    """An Anthropic Messages API that reads the whole request and answers one short message."""

    protocol_version = "HTTP/1.1"
    answer = payloads.stub_answer(ANTHROPIC, "json")

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        remaining = int(self.headers.get("content-length", "0"))
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def measure_memory(
    gateway: Gateway, messages: int, message_bytes: int, concurrent: int
) -> dict[str, object]:
    body = _big_body(messages, message_bytes)
    before = _memory_kib(gateway.pid)
    statuses: list[int] = []

    def send() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=600)
        try:
            headers = payloads.client_headers(OPENAI, gateway.key)
            connection.request("POST", payloads.endpoint(OPENAI), body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            connection.close()

    started = time.monotonic()
    senders = [threading.Thread(target=send) for _ in range(concurrent)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    seconds = time.monotonic() - started
    time.sleep(1.0)  # let the gateway settle before reading what it kept
    after = _memory_kib(gateway.pid)
    return {
        "mb": len(body) / 1e6,
        "messages": messages,
        "statuses": sorted(statuses),
        "seconds": seconds,
        "before_mib": before["VmRSS"] / 1024,
        "peak_mib": after["VmHWM"] / 1024,
        "after_mib": after["VmRSS"] / 1024,
    }


def report_memory(label: str, concurrent: int, result: dict[str, object]) -> str:
    return "\n".join(
        [
            f"{label}: {concurrent} concurrent requests of {result['mb']:.1f} MB "
            f"({result['messages']} messages) "
            f"(OpenAI chat to an Anthropic model), statuses {result['statuses']}, "
            f"all done after {result['seconds']:.1f} s",
            "",
            "| gateway RSS | MiB |",
            "|---|--:|",
            f"| before | {result['before_mib']:.0f} |",
            f"| peak (VmHWM) | {result['peak_mib']:.0f} |",
            f"| after, settled | {result['after_mib']:.0f} |",
        ]
    )


def main_memory(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="llm-gateway-big-") as scratch:
        work = Path(scratch)
        pyz = args.pyz or build_zipapp(work / "llm-gateway.pyz")
        upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        gateway = Gateway(pyz, work / "home", free_port(), GATEWAY_CPU)
        try:
            model = MODELS[(ANTHROPIC, "json")]
            base_url = f"http://127.0.0.1:{upstream.server_address[1]}"
            gateway.configure([("stub", ANTHROPIC, base_url, model)])
            gateway.start()
            result = measure_memory(gateway, args.messages, args.message_bytes, args.concurrent)
        finally:
            gateway.stop()
            upstream.shutdown()
    print(report_memory(str(args.pyz or "working tree"), args.concurrent, result))
    statuses = result["statuses"]
    assert isinstance(statuses, list)
    if len(statuses) != args.concurrent or set(statuses) != {200}:
        print(f"\nsome big requests failed: {statuses}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=800_000)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of baseline probing")
    parser.add_argument("--pyz", type=Path, help="a built zipapp (default: build the tree)")
    parser.add_argument(
        "--concurrent", type=int, default=0, help="measure peak memory with N requests at once"
    )
    parser.add_argument(
        "--message-bytes", type=int, default=1, help="the text of each message (default 1)"
    )
    args = parser.parse_args()
    if args.concurrent:
        return main_memory(args)
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
