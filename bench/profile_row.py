#!/usr/bin/env python3
"""Profile the gateway under load for one row of the matrix with py-spy.

Theory of operation: the same set-up as ``run.py`` (nginx stub and wrk on the
load core, the zipapp gateway on its own core) for one path, body and
connection count; while wrk runs, ``py-spy record --format raw`` samples the
gateway's Python stacks (threads waiting in ``epoll`` are left out, so the
samples are the gateway's busy time). The collapsed stacks are then summed
per function: *cumulative* counts a sample once for every distinct function on
its stack, *self* only for the innermost frame. The top functions of each, as
a share of the busy samples, go to ``bench/results/profile-DATE.md`` beside the
raw stacks (which flame-graph tools read).

py-spy is on the package index (``python3 -m pip install py-spy``); pass its
path with ``--py-spy`` when it is not on PATH.

Usage: ``python3 bench/profile_row.py [--path openai→openai] [--mode json]
[--connections 16] [--duration 20] [--top 15]``
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import payloads
from gateway_proc import Gateway, build_zipapp, free_port
from loadgen import WrkResult, run_wrk
from payloads import MODELS
from stub_nginx import NginxStub

RESULTS = Path(__file__).resolve().parent / "results"
_LINE_NUMBER = re.compile(r":\d+\)$")
_LIBRARY_PREFIX = re.compile(r"^.*?(\.pyz/|site-packages/|lib/python3\.\d+/)")


def summarise(raw: str, top: int) -> tuple[int, list[tuple[str, int, int]], list[str]]:
    """(busy samples, [(function, cumulative, self)] by cumulative, scaffolding) from raw output.

    Frames on (nearly) every stack, the entry point and the event loop, say
    nothing about where the time goes; they are returned apart, not ranked.
    """
    cumulative: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        # The first frame is the thread ("process 1:\"python3 ...\"" / "thread ..."): skip it.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        for frame in set(frames):
            cumulative[frame] += count
        if frames:
            own[frames[-1]] += count
    scaffolding = [name for name, cum in cumulative.most_common() if cum >= 0.97 * total]
    ranked = [(n, c) for n, c in cumulative.most_common() if n not in scaffolding]
    rows = [(name, cum, own[name]) for name, cum in ranked[:top]]
    return total, rows, scaffolding


def top_self(raw: str, top: int) -> list[tuple[str, int]]:
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            own[_LINE_NUMBER.sub(")", stack.split(";")[-1])] += int(count_text)
    return own.most_common(top)


def _short(frame: str) -> str:
    # "relay (llm_gateway/pipeline/proxy.py)" from "relay (/tmp/.../llm-gateway.pyz/llm_gateway/...)"
    name, _, where = frame.partition(" (")
    where = _LIBRARY_PREFIX.sub("", where.rstrip(")"))
    return f"`{name}` ({where})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default="openai→openai")
    parser.add_argument("--mode", choices=("json", "sse"), default="json")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", type=Path, help="default bench/results/profile-DATE.md")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    client, upstream = args.path.replace("->", "→").split("→")
    route = payloads.Route(client, upstream)
    work = Path(tempfile.mkdtemp(prefix="llm-gateway-profile-"))
    stub = NginxStub(work / "nginx", free_port(), args.load_cpu)
    gateway = Gateway(
        build_zipapp(work / "llm-gateway.pyz", args.python),
        work / "home",
        free_port(),
        args.gateway_cpu,
        args.python,
    )
    out: Path = args.out or RESULTS / f"profile-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    raw_path = out.with_suffix(".raw.txt")
    try:
        stub.start()
        gateway.configure(
            [
                (f"stub-{fmt}-{mode}", fmt, stub.base_url(fmt, mode), model)
                for (fmt, mode), model in MODELS.items()
            ]
        )
        gateway.start()
        stream = args.mode == "sse"
        model = MODELS[(upstream, args.mode)]
        body = work / "body.json"
        body.write_bytes(payloads.client_request(client, model, stream))
        headers = payloads.client_headers(client, gateway.key)
        url = gateway.url + payloads.endpoint(client)
        markers = payloads.wrk_markers(client, stream)
        load = {"connections": args.connections, "cpu": args.load_cpu}
        run_wrk(url, body, headers, markers, duration=2, **load)  # warm-up
        results: list[WrkResult] = []
        runner = threading.Thread(
            target=lambda: results.append(
                run_wrk(url, body, headers, markers, duration=args.duration + 2, **load)
            )
        )
        runner.start()
        time.sleep(1.0)
        spy = [args.py_spy, "record", "-p", str(gateway.pid), "-d", str(args.duration)]
        spy += ["-r", str(args.rate), "-f", "raw", "--full-filenames", "-o", str(raw_path)]
        subprocess.run(["taskset", "-c", str(args.load_cpu), *spy], check=True, capture_output=True)
        runner.join()
    finally:
        gateway.stop()
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)
    raw = raw_path.read_text()
    total, rows, scaffolding = summarise(raw, args.top)
    wrk = results[0]
    lines = [
        f"Profile of {route.label}, {'stream' if stream else 'json'}, {args.connections} "
        f"connections: `python3 bench/profile_row.py {' '.join(argv or sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d')}; py-spy at {args.rate} Hz for {args.duration} s, "
        f"{total} busy samples; wrk {wrk.rps:.0f} req/s, {wrk.errors} errors).",
        "",
        f"Top {args.top} functions by cumulative share of the gateway's busy samples "
        f"(not ranked: {len(scaffolding)} frames on every stack, the entry point and the "
        "event loop's `run_forever`/`_run_once`):",
        "",
        "| # | function | cumulative % | self % |",
        "|--:|---|--:|--:|",
    ]
    for number, (name, cum, own) in enumerate(rows, 1):
        lines.append(
            f"| {number} | {_short(name)} | {100 * cum / total:.1f} | {100 * own / total:.1f} |"
        )
    lines += ["", f"Top {args.top} by self share:", "", "| function | self % |", "|---|--:|"]
    for name, own in top_self(raw, args.top):
        lines.append(f"| {_short(name)} | {100 * own / total:.1f} |")
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)
    print(f"wrote {out} and {raw_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
