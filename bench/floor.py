#!/usr/bin/env python3
"""The design floor: what a minimal asyncio + h11 proxy costs, beside the gateway.

Theory of operation: the gateway's design is fixed (asyncio, h11 on the client
side and on the upstream side), so part of its CPU per request is the price of
that design, not of its logic. This script measures that price: two proxies
with no gateway logic at all (no auth, routing, pool, budgets, conversion or
logging), only what any asyncio + h11 proxy must do per request: parse the
client's request with h11, frame an upstream request with h11 (host,
content-type, content-length, a dummy bearer), parse the upstream's response
with h11 and frame it for the client (content-type, and content-length when
the upstream gave one and the answer is not a stream; else h11's chunked
encoding, one chunk per upstream read, as the gateway sends streams). Each
client connection gets one upstream connection, opened at its first request
and kept for its life (nginx keeps it alive indefinitely; any upstream
trouble closes the client connection).

* *floor-streams*: ``asyncio.start_server``, one task per connection,
  ``StreamReader``/``StreamWriter``, ``await writer.drain()`` after writes;
  a JSON answer goes out in one write, a stream as head, one write per
  upstream read, end.
* *floor-callbacks*: the same with ``asyncio.Protocol`` callbacks only (one
  task per client connection to open the upstream connection, none per
  request, no flow control): the cheapest asyncio + h11 can do.

Rows, per body (OpenAI JSON, the 20-chunk OpenAI stream) and connection count,
all on the same nginx stub (``stub_nginx.py``): *direct* (wrk to the stub),
the two floors, and the *gateway* (OpenAI→OpenAI, as in ``run.py``). Proxies
and gateway run alone on CPU 0, nginx and wrk on CPU 1. Every row is checked
(``loadgen.probe``, wrk's markers); CPU ms/req is the proxy process's CPU over
the wrk run (``/proc``) ÷ completed requests. The gateway's CPU ÷ a floor's is
how many times the design's minimum the gateway spends.

Usage: ``python3 bench/floor.py [--duration 10] [--connections 1,16,64] [--modes json,sse]``
(the proxies themselves: ``floor.py --serve streams|callbacks --port P
--upstream-port U --path /...``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

try:
    import h11
except ImportError:  # only the proxies need it; build_zipapp installs it first
    h11 = None

import payloads
from gateway_proc import REPO, Gateway, build_zipapp, free_port
from loadgen import probe, run_wrk
from payloads import MODELS, OPENAI
from procstat import cpu_seconds, cpu_times
from stub_nginx import NginxStub

PROXY_CPU, LOAD_CPU = 0, 1
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = ("direct", "floor-streams", "floor-callbacks", "gateway")
_RELAYED = (b"content-type", b"content-length")


# -- the two floor proxies --------------------------------------------------------


class _Closed(Exception):
    """The peer closed its connection (or broke the exchange)."""


def _upstream_request(conn: Any, port: int, path: str, body: bytes) -> bytes:
    headers = [
        ("host", f"127.0.0.1:{port}"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("authorization", "Bearer sk-floor-dummy"),
    ]
    head = conn.send(h11.Request(method="POST", target=path, headers=headers))
    return head + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())


class _Relay:
    """One client connection's response side: the bytes to write after each upstream event.

    An answer with a content-length goes out in one piece at the end. A stream
    (no content-length, or ``text/event-stream``: nginx gives its static SSE
    file a length, the gateway relays it as a stream) goes out as the head at
    once, then one chunk per upstream Data event, as it arrives.
    """

    def __init__(self, client: Any) -> None:
        self.send = client.send
        self.head: Any = None
        self.streaming = False
        self.parts: list[bytes] = []

    def feed(self, event: Any) -> bytes:
        if isinstance(event, h11.Response):
            headers = {n: v for n, v in event.headers if n in _RELAYED}
            self.streaming = b"content-length" not in headers or headers.get(
                b"content-type", b""
            ).startswith(b"text/event-stream")
            if self.streaming:
                headers.pop(b"content-length", None)  # so h11 frames it chunked
            self.head = h11.Response(status_code=event.status_code, headers=list(headers.items()))
            return self.send(self.head) if self.streaming else b""
        if isinstance(event, h11.Data):
            if self.streaming:
                return self.send(h11.Data(data=event.data))
            self.parts.append(event.data)
            return b""
        if isinstance(event, h11.EndOfMessage):
            if self.streaming:
                return self.send(h11.EndOfMessage())
            body, self.parts = b"".join(self.parts), []
            return self.send(self.head) + self.send(h11.Data(data=body)) + self.send(event)
        raise _Closed  # closed mid-answer (or a 1xx, which the stub never sends)


async def _next_event(conn: Any, reader: asyncio.StreamReader) -> Any:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await reader.read(65536))  # b"" at EOF: h11 then says closed
    if isinstance(event, h11.ConnectionClosed):
        raise _Closed
    return event


async def _streams_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, path: str
) -> None:
    client = h11.Connection(h11.SERVER)
    relay = _Relay(client)
    up_writer: asyncio.StreamWriter | None = None
    try:
        while True:
            body = b""
            while not isinstance(event := await _next_event(client, reader), h11.EndOfMessage):
                if isinstance(event, h11.Data):
                    body += event.data
            if up_writer is None:  # opened at the first request, kept for the connection's life
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                upstream = h11.Connection(h11.CLIENT)
            up_writer.write(_upstream_request(upstream, port, path, body))
            await up_writer.drain()
            while True:
                event = await _next_event(upstream, up_reader)
                if data := relay.feed(event):
                    writer.write(data)
                    await writer.drain()
                if isinstance(event, h11.EndOfMessage):
                    break
            upstream.start_next_cycle()
            if client.our_state is h11.MUST_CLOSE:
                return
            client.start_next_cycle()
    except (_Closed, OSError, h11.ProtocolError):
        return  # the client left (or something broke): end its connection
    finally:
        writer.close()
        if up_writer is not None:
            up_writer.close()


class _CallbackClient(asyncio.Protocol):
    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.conn = h11.Connection(h11.SERVER)
        self.transport: Any = None
        self.upstream: _CallbackUpstream | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self.process()

    def process(self) -> None:
        """Handle what h11 has buffered (it says PAUSED while an answer is pending)."""
        try:
            while (event := self.conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Data):
                    self.body.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.forward(b"".join(self.body))
                    self.body = []
                elif isinstance(event, h11.ConnectionClosed):
                    raise _Closed
        except (_Closed, h11.ProtocolError):
            self.transport.close()

    def forward(self, body: bytes) -> None:
        if self.upstream is None:  # one task per client connection, none per request
            self.upstream = upstream = _CallbackUpstream(self)
            loop = asyncio.get_running_loop()
            opening = loop.create_task(
                loop.create_connection(lambda: upstream, "127.0.0.1", self.port)
            )
            opening.add_done_callback(self._opened)
        self.upstream.send(_upstream_request(self.upstream.conn, self.port, self.path, body))

    def _opened(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            self.transport.close()

    def answered(self) -> None:
        if self.conn.our_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        self.conn.start_next_cycle()
        self.process()  # the next request may already be buffered


class _CallbackUpstream(asyncio.Protocol):
    def __init__(self, client: _CallbackClient) -> None:
        self.client = client
        self.conn = h11.Connection(h11.CLIENT)
        self.relay = _Relay(client.conn)
        self.transport: Any = None
        self.pending = b""

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending = data  # written once connected
        else:
            self.transport.write(data)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.pending)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        try:
            while (event := self.conn.next_event()) is not h11.NEED_DATA:
                if out := self.relay.feed(event):
                    self.client.transport.write(out)
                if isinstance(event, h11.EndOfMessage):
                    self.conn.start_next_cycle()
                    self.client.answered()
        except (_Closed, h11.ProtocolError):
            self.transport.close()


async def serve(kind: str, port: int, upstream_port: int, path: str) -> None:
    if kind == "streams":
        server = await asyncio.start_server(
            lambda r, w: _streams_connection(r, w, upstream_port, path), "127.0.0.1", port
        )
    else:
        server = await asyncio.get_running_loop().create_server(
            lambda: _CallbackClient(upstream_port, path), "127.0.0.1", port
        )
    await server.serve_forever()


# -- the measurements ---------------------------------------------------------------


def start_floor(kind: str, upstream_url: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port, upstream, log = free_port(), urllib.parse.urlsplit(upstream_url), work / f"{kind}.log"
    command = ["taskset", "-c", str(PROXY_CPU), sys.executable, __file__, "--serve", kind]
    command += ["--port", str(port), "--upstream-port", str(upstream.port), "--path", upstream.path]
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while process.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"floor-{kind} did not start:\n{log.read_text()}")


def measure(
    work: Path, url: str, pid: int | None, key: str, mode: str, conns: int, duration: int
) -> dict[str, Any]:
    model, stream = MODELS[(OPENAI, mode)], mode == "sse"
    body = payloads.client_request(OPENAI, model, stream)
    headers = payloads.client_headers(OPENAI, key)
    problems = probe(url, body, headers, client=OPENAI, stream=stream, model=model, count=3)
    body_file = work / f"body-{mode}.json"
    body_file.write_bytes(body)
    wrk = {"markers": payloads.wrk_markers(OPENAI, stream), "connections": conns, "cpu": LOAD_CPU}
    run_wrk(url, body_file, headers, duration=1, **wrk)  # warm-up
    cpu0, cores0 = cpu_seconds(pid) if pid else 0.0, cpu_times()
    result = run_wrk(url, body_file, headers, duration=duration, **wrk)
    cores1, cpu = cpu_times(), (cpu_seconds(pid) - cpu0 if pid else 0.0)
    other = cores0.busy_fraction(cores1, PROXY_CPU) - cpu / max(result.duration_s, 1e-9)
    return dict(
        rps=result.rps, p50=result.p50_ms, p99=result.p99_ms, errors=result.errors + len(problems),
        cpu=cpu * 1000 / max(result.requests, 1) if pid else None,
        other=max(0.0, other) * 100, problem=problems[0] if problems else "",
    )  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| body | conns | row | req/s | p50 ms | p99 ms | p50 added ms | proxy CPU ms/req "
        "| gw ÷ floor-streams CPU | gw ÷ floor-callbacks CPU | errors | proxy core: other % |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        group = {g["target"]: g for g in rows if (g["mode"], g["conns"]) == (r["mode"], r["conns"])}
        added = "–" if r["target"] == "direct" else f"{r['p50'] - group['direct']['p50']:+.3f}"
        ratios = ["–", "–"]
        if r["target"] == "gateway":
            floors = (group["floor-streams"]["cpu"], group["floor-callbacks"]["cpu"])
            ratios = [f"**{r['cpu'] / f:.2f}**" if f else "–" for f in floors]
        cpu = "–" if r["cpu"] is None else f"**{r['cpu']:.3f}**"
        other = f"{r['other']:.0f}" + (" ⚠" if r["other"] > 5 else "")
        out.append(
            f"| {'stream' if r['mode'] == 'sse' else 'json'} | {r['conns']} | {r['target']} "
            f"| {r['rps']:,.0f} | {r['p50']:.3f} | {r['p99']:.2f} | {added} | {cpu} "
            f"| {ratios[0]} | {ratios[1]} | {r['errors']} | {other} |"
        )
    return out


def run(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    stub = NginxStub(work / "nginx", free_port(), LOAD_CPU)
    stub.start()
    gateway = Gateway(build_zipapp(work / "llm-gateway.pyz"), work / "home", free_port(), PROXY_CPU)
    floors: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        modes = ("json", "sse")
        gateway.configure(
            [(f"stub-openai-{m}", OPENAI, stub.base_url(OPENAI, m), MODELS[(OPENAI, m)]) for m in modes]
        )  # fmt: skip
        gateway.start()
        for mode in args.modes:
            targets = {
                "direct": (stub.url(OPENAI, mode), None, "sk-floor-direct"),
                "gateway": (gateway.url + payloads.endpoint(OPENAI), gateway.pid, gateway.key),
            }
            for kind in ("streams", "callbacks"):
                process, port = start_floor(kind, stub.url(OPENAI, mode), work)
                floors.append(process)
                url = f"http://127.0.0.1:{port}{payloads.endpoint(OPENAI)}"
                targets[f"floor-{kind}"] = (url, process.pid, "sk-floor-client")
            for conns in args.connections:
                for target in TARGETS:
                    print(f"{mode:4} c={conns:<3} {target:15}", end=" ", flush=True)
                    row = measure(work, *targets[target], mode, conns, args.duration)
                    rows.append({**row, "target": target, "mode": mode, "conns": conns})
                    cpu = "" if row["cpu"] is None else f"  cpu {row['cpu']:.3f} ms/req"
                    print(f"{row['rps']:8.0f} req/s  p50 {row['p50']:.3f} ms{cpu}  "
                          f"errors {row['errors']} {row['problem']}", flush=True)  # fmt: skip
            while floors:  # the next mode's floors serve another path
                floors[-1].terminate()
                floors.pop().wait()
    finally:
        for process in floors:
            process.kill()
            process.wait()
        gateway.stop()
        stub.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per row (default 10)")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated (1,16,64)")
    parser.add_argument("--modes", default="json,sse", help="json, sse or both (default)")
    parser.add_argument("--serve", choices=("streams", "callbacks"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port, args.upstream_port, args.path))
        return 0
    args.connections = [int(c) for c in args.connections.split(",") if c]
    args.modes = [m for m in args.modes.split(",") if m]
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run python3 bench/run.py once (it installs it)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    date, load_before = datetime.datetime.now().astimezone(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llm-gateway-floor-") as scratch:
        rows = run(args, Path(scratch))
    git = ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    command = " ".join(["python3", "bench/floor.py", *sys.argv[1:]])
    text = "\n".join([
        f"Run of {date.isoformat(timespec='seconds')}: `{command}` (OpenAI→OpenAI, {args.duration} s "
        f"per row after 1 s warm-up; Python {sys.version.split()[0]}; gateway `{commit}`; proxies "
        f"on CPU {PROXY_CPU}, nginx + wrk on CPU {LOAD_CPU}; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after).",
        "", *table(rows), "",
    ])  # fmt: skip
    out = RESULTS / f"floor-{date.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwrote {out}\n\n{text}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
