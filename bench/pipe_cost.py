"""CPU per same-format stream in the gateway's stream pipes, in-process (no sockets).

Feeds the bench stub's 20-chunk streams, cut in 256-byte pieces as the stub
writes them, through each pipe many times and reports microseconds per stream:
``TapPipe`` (bytes through, only usage parsed) against ``RewritePipe`` (every
event decoded and re-encoded), with and without hiding usage.

Usage: ``python3 bench/pipe_cost.py [--streams 3000]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import payloads  # noqa: E402

from llm_gateway.pipeline.streams import RewritePipe, StreamPipe, TapPipe  # noqa: E402

FORMATS = {"openai": "openai-chat", "anthropic": "anthropic-messages"}


def cost(make: Callable[[], StreamPipe], pieces: list[bytes], streams: int) -> float:
    start = time.perf_counter()
    for _ in range(streams):
        pipe = make()
        for piece in pieces:
            pipe.feed(piece)
        pipe.finish()
    return (time.perf_counter() - start) / streams * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=3000)
    args = parser.parse_args()
    print("| stream | pipe | µs per stream |")
    print("|---|---|--:|")
    for upstream, fmt in FORMATS.items():
        data = payloads.stub_answer(upstream, "sse")
        pieces = [data[i : i + 256] for i in range(0, len(data), 256)]
        variants: dict[str, Callable[[], StreamPipe]] = {
            "RewritePipe": functools.partial(RewritePipe, fmt, None, False),
            "TapPipe": functools.partial(TapPipe, fmt, False),
            "RewritePipe, hiding usage": functools.partial(RewritePipe, fmt, None, True),
        }
        for name, make in variants.items():
            print(f"| {fmt} | {name} | {cost(make, pieces, args.streams):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
