#!/usr/bin/env python3
"""Many open streams: hold 5,000 streaming requests open through the gateway.

Theory of operation: three processes, as in ``run.py``:

* a *slow upstream* (this script with ``--serve-upstream``, an asyncio HTTP/1.1
  server pinned to the load core) that answers every POST with the fixed
  stream of ``payloads`` in chunked encoding, sending the first event at once
  and the others one every ``--hold / events`` seconds, so each stream stays
  open for about ``--hold`` seconds;
* the gateway (zipapp, ``taskset`` to the gateway core) configured to route
  there, with its default connection limits (sized from the open-file limit;
  ``--limit N`` sets ``server.max_connections`` and
  ``proxy.max_connections_per_upstream`` to N instead);
* the client (this script, also on the load core): opens ``--streams``
  connections with asyncio (at most ``--connect-burst`` connecting at once),
  sends one streaming request on each and reads the whole stream, which is
  checked in full (``checks.check_response``) when it ends.

Once every stream has delivered its first event, all of them are open at
the same time: the gateway's resident set is read then, and its growth over
the idle figure, divided by the number of open streams, is the memory per
open stream. The run reports that, the peak (``VmHWM``), the gateway's CPU
time, how many streams completed correctly and what went wrong with the
others. ``RLIMIT_NOFILE`` is raised to its hard limit first, for this process
and the children it starts (the gateway needs two descriptors per stream).

Usage: ``python3 bench/stream_hold.py [--streams 5000] [--hold 30] [--paths ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import payloads
from checks import check_response
from gateway_proc import Gateway, build_zipapp, free_port
from payloads import ANTHROPIC, MODELS, OPENAI
from procstat import RssSampler, cpu_seconds, memory_kib

RESULTS = Path(__file__).resolve().parent / "results"

# -- the slow upstream ------------------------------------------------------------


async def _serve_upstream(port: int, hold: float) -> None:
    streams = {fmt: payloads.stub_events(fmt) for fmt in (OPENAI, ANTHROPIC)}
    open_streams = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_streams
        try:
            while True:  # keep-alive: one request after another
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                fmt = OPENAI if request_line.split()[1].endswith("/chat/completions") else ANTHROPIC
                events = streams[fmt]
                interval = hold / max(1, len(events) - 1)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                open_streams += 1
                try:
                    for number, event in enumerate(events):
                        if number:
                            await asyncio.sleep(interval)
                        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                finally:
                    open_streams -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


# -- the client -------------------------------------------------------------------


@dataclass
class Tally:
    started: int = 0
    headers: int = 0
    first_event: int = 0
    completed_ok: int = 0
    open_now: int = 0
    max_open: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)


async def _read_response(reader: asyncio.StreamReader, on_first: Any) -> tuple[int, str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = bytearray()
    first = True
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if first:
                first = False
                on_first()
    elif "content-length" in headers:
        body += await reader.readexactly(int(headers["content-length"]))
    else:
        body += await reader.read()
    return status, headers.get("content-type", ""), bytes(body)


async def _one_stream(
    url_host: str,
    port: int,
    path: str,
    request: bytes,
    client: str,
    model: str,
    tally: Tally,
    connect_gate: asyncio.Semaphore,
    timeout: float,
) -> None:
    tally.started += 1
    opened = False

    def on_first() -> None:
        nonlocal opened
        opened = True
        tally.first_event += 1
        tally.open_now += 1
        tally.max_open = max(tally.max_open, tally.open_now)

    writer = None
    try:
        async with connect_gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(url_host, port), 30)
        writer.write(request)
        status, content_type, body = await asyncio.wait_for(
            _read_response(reader, on_first), timeout
        )
        tally.headers += 1
        problems = check_response(client, True, model, status, content_type, body)
        if problems:
            tally.failures[problems[0][:160]] += 1
        else:
            tally.completed_ok += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
        tally.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
    finally:
        if opened:
            tally.open_now -= 1
        if writer is not None:
            writer.close()


def _http_request(path: str, body: bytes, headers: dict[str, str], port: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _hold(
    gateway: Gateway, route: payloads.Route, args: argparse.Namespace
) -> dict[str, Any]:
    model = MODELS[(route.upstream, "sse")]
    body = payloads.client_request(route.client, model, True)
    headers = payloads.client_headers(route.client, gateway.key)
    path = payloads.endpoint(route.client)
    request = _http_request(path, body, headers, gateway.port)
    tally = Tally()
    gate = asyncio.Semaphore(args.connect_burst)
    rss_idle, _ = memory_kib(gateway.pid)
    cpu0 = cpu_seconds(gateway.pid)
    began = time.monotonic()
    timeout = args.hold * 3 + 120
    tasks = [
        asyncio.ensure_future(
            _one_stream(
                "127.0.0.1", gateway.port, path, request, route.client, model, tally, gate, timeout
            )
        )
        for _ in range(args.streams)
    ]
    all_open_after = None
    rss_all_open = 0
    with RssSampler(gateway.pid, 0.5) as sampler:
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.2)
            if all_open_after is None and tally.open_now >= args.streams:
                all_open_after = time.monotonic() - began
                await asyncio.sleep(1.0)  # let the gateway settle with every stream open
                rss_all_open, _ = memory_kib(gateway.pid)
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - began
    if not rss_all_open:  # never all open at once: the most that were
        rss_all_open = sampler.peak_kib
    rss_after, hwm = memory_kib(gateway.pid)
    cpu = cpu_seconds(gateway.pid) - cpu0
    opened = max(tally.max_open, 1)
    return {
        "path": route.label,
        "streams": args.streams,
        "hold_s": args.hold,
        "max_open_at_once": tally.max_open,
        "all_open_after_s": round(all_open_after, 2) if all_open_after is not None else None,
        "completed_ok": tally.completed_ok,
        "failed": sum(tally.failures.values()),
        "failures": dict(tally.failures.most_common(10)),
        "elapsed_s": round(elapsed, 1),
        "gateway_rss_idle_mib": rss_idle / 1024,
        "gateway_rss_all_open_mib": rss_all_open / 1024,
        "gateway_rss_sampled_peak_mib": sampler.peak_kib / 1024,
        "gateway_hwm_mib": hwm / 1024,
        "gateway_rss_after_mib": rss_after / 1024,
        "rss_per_open_stream_kib": (rss_all_open - rss_idle) / opened,
        "gateway_cpu_s": cpu,
        "gateway_cpu_ms_per_stream": cpu * 1000 / max(tally.completed_ok, 1),
    }


@dataclass
class Report:
    meta: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def markdown(self) -> str:
        out = [
            f"Run of {self.meta['date']}: `{self.meta['command']}` (gateway settings: "
            f"`server.max_connections: {self.meta['limits']['max_connections']}`, "
            "`proxy.max_connections_per_upstream: "
            f"{self.meta['limits']['max_connections_per_upstream']}`)",
            "",
            "| path | streams | open at once | all open after s | completed ok | failed "
            "| RSS MiB idle → all open | peak (HWM) MiB | RSS per open stream KiB | gw CPU ms/stream |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in self.runs:
            all_open = r["all_open_after_s"] is not None
            out.append(
                f"| {r['path']} | {r['streams']} | {r['max_open_at_once']} "
                f"| {r['all_open_after_s'] if all_open else 'never'} "
                f"| {r['completed_ok']} | {r['failed']} "
                f"| {r['gateway_rss_idle_mib']:.1f} → {r['gateway_rss_all_open_mib']:.1f} "
                f"| {r['gateway_hwm_mib']:.1f} "
                f"| {format(r['rss_per_open_stream_kib'], '.1f') if all_open else '–'} "
                f"| {r['gateway_cpu_ms_per_stream']:.2f} |"
            )
        for r in self.runs:
            for reason, count in r["failures"].items():
                out.append(f"\n{r['path']}: {count} × {reason}")
        return "\n".join(out) + "\n"


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds each stream stays open")
    parser.add_argument(
        "--paths",
        default="anthropic→anthropic,openai→anthropic",
        help="comma-separated client→upstream pairs",
    )
    parser.add_argument(
        "--connect-burst", type=int, default=256, help="connections opening at once"
    )
    parser.add_argument(
        "--limit",
        type=int,
        help="set both connection limits to this (default: the gateway's own defaults)",
    )
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--out", type=Path, help="markdown output (default bench/results/hold-DATE.md)"
    )
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    limit = _raise_fd_limit()
    if args.serve_upstream:
        asyncio.run(_serve_upstream(args.serve_upstream, args.hold))
        return 0
    needed = 2 * args.streams + 100
    if limit < needed:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}; {needed} descriptors are needed")
    os.sched_setaffinity(0, {args.load_cpu})
    routes = []
    for label in args.paths.replace("->", "→").split(","):
        client, upstream = label.split("→")
        routes.append(payloads.Route(client, upstream))
    work = Path(tempfile.mkdtemp(prefix="llm-gateway-hold-"))
    stub_port = free_port()
    stub = subprocess.Popen(
        ["taskset", "-c", str(args.load_cpu), sys.executable, __file__, "--hold", str(args.hold)]
        + ["--serve-upstream", str(stub_port)]
    )
    gateway = Gateway(
        build_zipapp(work / "llm-gateway.pyz", args.python),
        work / "home",
        free_port(),
        args.gateway_cpu,
        args.python,
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or RESULTS / f"hold-{stamp}.md"
    report = Report(
        {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(["python3", "bench/stream_hold.py", *(argv or sys.argv[1:])]),
            "nofile_limit": limit,
            "loadavg_before": os.getloadavg(),
        }
    )
    try:
        base = f"http://127.0.0.1:{stub_port}"
        limits = {"max_connections": args.limit, "max_connections_per_upstream": args.limit}
        report.meta["limits"] = {k: v or "auto (default)" for k, v in limits.items()}
        gateway.configure(
            [
                (
                    f"slow-{fmt}",
                    fmt,
                    base + payloads.stub_location(fmt, "sse"),
                    MODELS[(fmt, "sse")],
                )
                for fmt in (OPENAI, ANTHROPIC)
            ],
            **limits,
        )
        for route in routes:
            # A fresh gateway per path: its idle figure is not inflated by the last run.
            gateway.start()
            time.sleep(1.0)
            print(f"{route.label}: {args.streams} streams held ~{args.hold:g} s ...", flush=True)
            result = asyncio.run(_hold(gateway, route, args))
            report.runs.append(result)
            print(json.dumps(result, indent=2), flush=True)
            gateway.stop()
    finally:
        gateway.stop()
        stub.terminate()
        stub.wait()
        out.parent.mkdir(parents=True, exist_ok=True)
        if gateway.log_path.exists():
            shutil.copy(gateway.log_path, out.with_suffix(".gateway.log"))
        shutil.rmtree(work, ignore_errors=True)
    report.meta["loadavg_after"] = os.getloadavg()
    out.write_text(report.markdown())
    out.with_suffix(".json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"\nwrote {out}\n")
    print(report.markdown())
    return 0 if all(r["failed"] == 0 for r in report.runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
