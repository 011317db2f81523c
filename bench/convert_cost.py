#!/usr/bin/env python3
"""Conversion cost in-process: microseconds per stream event and per request.

Theory of operation: the gateway's conversion code is sans-IO, so its cost can
be measured without sockets. For each client→upstream pair this script runs,
on the same fixed bodies the benchmark's stub serves (``payloads``):

* *stream*: the upstream's 20-chunk SSE stream, fed one event per ``feed``
  call (as a token-by-token upstream delivers it) through the chain the
  gateway builds: ``SSEDecoder`` → the upstream format's parser → the client
  format's renderer (cross format); for same-format pairs, the decoder and
  the format's model rewriter (the path taken when a ``model_map`` renames
  the model or the gateway added a usage request; plain passthrough costs
  nothing). Also each stage alone: decoding, parsing, rendering.
* *non-streaming*: the request (``json.loads`` of the client's body, the
  client codec's ``parse_request``, the upstream codec's ``render_request``,
  ``json.dumps``) and the response (``json.loads`` of the upstream body,
  ``parse_response``, ``render_response``, ``json.dumps``). For same-format
  pairs the gateway passes bytes through, so only the ``json.loads`` it does
  to route the request is listed.

Each figure is the best of ``--repeat`` rounds of ``--iterations`` runs timed
with ``time.perf_counter_ns`` (the minimum is the least disturbed by other
processes), reported in microseconds per event or per request.

Usage: ``python3 bench/convert_cost.py [--iterations 2000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import payloads
from payloads import ANTHROPIC, GEMINI, MODELS, OPENAI, Route

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
#: payloads' short names -> the gateway's format names
FORMAT_NAMES = {
    OPENAI: "openai-chat",
    ANTHROPIC: "anthropic-messages",
    GEMINI: "gemini-generate-content",
}
ROUTES = (
    Route(OPENAI, OPENAI),
    Route(ANTHROPIC, ANTHROPIC),
    Route(OPENAI, ANTHROPIC),
    Route(ANTHROPIC, OPENAI),
    Route(OPENAI, GEMINI),
    Route(ANTHROPIC, GEMINI),
)


def best_ns(run: Callable[[], object], iterations: int, repeat: int) -> float:
    """Nanoseconds per call of ``run``: the best of ``repeat`` rounds of ``iterations`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            run()
        best = min(best, (time.perf_counter_ns() - start) / iterations)
    return best


def stream_costs(route: Route, iterations: int, repeat: int) -> dict[str, Any]:
    from llm_gateway.streaming.registry import STREAM_FORMATS
    from llm_gateway.streaming.sse import SSEDecoder

    upstream = STREAM_FORMATS[FORMAT_NAMES[route.upstream]]
    client = STREAM_FORMATS[FORMAT_NAMES[route.client]]
    model = MODELS[(route.upstream, "sse")]
    chunks = payloads.stub_events(route.upstream)
    events = len(chunks)

    def decode() -> None:
        decoder = SSEDecoder()
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.close()

    decoded = [event for chunk in chunks for event in SSEDecoder().feed(chunk)]

    def parse() -> None:
        parser = upstream.parser_factory()
        for event in decoded:
            parser.feed(event)
        parser.finish()

    first = upstream.parser_factory()
    unified = [u for event in decoded for u in first.feed(event)] + first.finish()

    def render() -> None:
        renderer = client.renderer_factory(model=model, include_usage=True, created=0)
        for event in unified:
            renderer.feed(event)
        renderer.finish()

    def convert() -> None:
        decoder = SSEDecoder()
        parser = upstream.parser_factory()
        renderer = client.renderer_factory(model=model, include_usage=True, created=0)
        out: list[bytes] = []
        for chunk in chunks:
            for event in decoder.feed(chunk):
                out.extend(renderer.feed(u) for u in parser.feed(event))
        for event in decoder.close():
            out.extend(renderer.feed(u) for u in parser.feed(event))
        out.extend(renderer.feed(u) for u in parser.finish())
        out.append(renderer.finish())
        b"".join(out)

    def rewrite() -> None:
        decoder = SSEDecoder()
        rewriter = client.rewriter_factory(model="renamed-model", strip_usage=False)
        out = [rewriter.feed(event) for chunk in chunks for event in decoder.feed(chunk)]
        out += [rewriter.feed(event) for event in decoder.close()]
        out.append(rewriter.finish())
        b"".join(out)

    result: dict[str, Any] = {"events": events, "unified_events": len(unified)}
    for name, run in (("decode", decode), ("parse", parse), ("render", render)):
        result[name] = best_ns(run, iterations, repeat) / 1000 / events
    chain = rewrite if route.same_format else convert
    result["chain"] = "decode+rewrite" if route.same_format else "decode+parse+render"
    result["per_event_us"] = best_ns(chain, iterations, repeat) / 1000 / events
    result["per_stream_us"] = result["per_event_us"] * events
    return result


def request_costs(route: Route, iterations: int, repeat: int) -> dict[str, Any]:
    from llm_gateway.formats.registry import FORMATS

    client = FORMATS[FORMAT_NAMES[route.client]]
    upstream = FORMATS[FORMAT_NAMES[route.upstream]]
    model = MODELS[(route.upstream, "json")]
    request = payloads.client_request(route.client, model, False)
    answer = payloads.stub_answer(route.upstream, "json")

    def dumps(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def convert_request() -> None:
        dumps(upstream.render_request(client.parse_request(json.loads(request))))

    def convert_response() -> None:
        dumps(client.render_response(upstream.parse_response(json.loads(answer)), model=model))

    parsed_request = json.loads(request)
    parsed_answer = json.loads(answer)
    result: dict[str, Any] = {
        "request_bytes": len(request),
        "response_bytes": len(answer),
        "loads_request_us": best_ns(lambda: json.loads(request), iterations, repeat) / 1000,
    }
    if route.same_format:
        return result
    result["request_codec_us"] = (
        best_ns(
            lambda: upstream.render_request(client.parse_request(parsed_request)),
            iterations,
            repeat,
        )
        / 1000
    )
    result["response_codec_us"] = (
        best_ns(
            lambda: client.render_response(upstream.parse_response(parsed_answer), model=model),
            iterations,
            repeat,
        )
        / 1000
    )
    result["request_total_us"] = best_ns(convert_request, iterations, repeat) / 1000
    result["response_total_us"] = best_ns(convert_response, iterations, repeat) / 1000
    return result


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [
        f"Run of {meta['date']}: `{meta['command']}` ({meta['python']}; best of "
        f"{meta['repeat']} × {meta['iterations']}).",
        "",
        "Streams (µs per upstream SSE event, 20 content chunks plus the format's framing events):",
        "",
        "| path | events | decode | parse | render | chain | µs/event | µs/stream |",
        "|---|--:|--:|--:|--:|---|--:|--:|",
    ]
    for r in results["routes"]:
        s = r["stream"]
        out.append(
            f"| {r['path']} | {s['events']} | {s['decode']:.2f} | {s['parse']:.2f} | {s['render']:.2f} "
            f"| {s['chain']} | **{s['per_event_us']:.2f}** | {s['per_stream_us']:.0f} |"
        )
    out += [
        "",
        "Every column is divided by the number of upstream events. Same-format rows: the "
        "chain is the rewrite path (renamed model); plain passthrough does no per-event "
        "work, and their parse and render columns are for reference only.",
        "",
        "Non-streaming (µs per request):",
        "",
        "| path | json.loads request | request codec | request total | response codec "
        "| response total |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in results["routes"]:
        q = r["request"]
        if "request_total_us" in q:
            out.append(
                f"| {r['path']} | {q['loads_request_us']:.1f} | {q['request_codec_us']:.1f} "
                f"| **{q['request_total_us']:.1f}** | {q['response_codec_us']:.1f} "
                f"| **{q['response_total_us']:.1f}** |"
            )
        else:
            out.append(f"| {r['path']} | {q['loads_request_us']:.1f} | passthrough | – | – | – |")
    out += [
        "",
        "Totals include `json.loads` of the body and `json.dumps` of the result; codec "
        "columns are the codecs alone on parsed data.",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, help="markdown output (default bench/results/convert-DATE.md)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(REPO))  # the gateway's sources in this checkout
    results: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(["python3", "bench/convert_cost.py", *(argv or sys.argv[1:])]),
            "python": f"Python {sys.version.split()[0]}",
            "iterations": args.iterations,
            "repeat": args.repeat,
        },
        "routes": [],
    }
    for route in ROUTES:
        results["routes"].append(
            {
                "path": route.label,
                "stream": stream_costs(route, args.iterations, args.repeat),
                "request": request_costs(route, args.iterations, args.repeat),
            }
        )
    text = markdown(results)
    out: Path = args.out or RESULTS / f"convert-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
