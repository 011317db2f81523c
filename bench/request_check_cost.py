#!/usr/bin/env python3
"""What reading and checking a client's request costs, in-process: microseconds per request.

Theory of operation: every inference request is parsed once and checked
before any upstream call (the top-level keys given once, the shape the
client's format requires). This script times, on three bodies (the
benchmark's small chat request, an agent's turn of 60 messages with tools,
and a 1 MB conversation), the parse alone (``json.loads``), the gateway's
parse (``json_object.loads_object``: the top level walked in Python, each
value read by the C scanner), the alternative it replaces (``json.loads``
with an ``object_pairs_hook`` that checks every object), and the shape check
(``formats.validate.check_request``). Figures are the best of ``--repeat``
rounds of ``--iterations`` calls (``convert_cost.best_ns``).

Usage: ``python3 bench/request_check_cost.py [--iterations 2000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import payloads
from convert_cost import REPO, best_ns
from payloads import MODELS, OPENAI

sys.path.insert(0, str(REPO))

from llm_gateway.formats.registry import FORMATS  # noqa: E402
from llm_gateway.formats.validate import check_request  # noqa: E402
from llm_gateway.json_object import loads_object  # noqa: E402


def _checked_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key given twice")
    return obj


def _agent_turn(messages: int) -> bytes:
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file from the workspace. " * 4,
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["path"],
            },
        },
    }
    turns: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent. " * 40}]
    for i in range(messages):
        if i % 2:
            turns.append({"role": "user", "content": f"Step {i}: here is the output. " * 12})
        else:
            turns.append({"role": "assistant", "content": f"Looking at step {i}. " * 8})
    body = {"model": "gpt-bench", "stream": True, "messages": turns, "tools": [tool] * 12}
    return json.dumps(body).encode()


def _long_conversation(size: int) -> bytes:
    message = {"role": "user", "content": "a" * 500}
    count = size // 530
    return json.dumps({"model": "gpt-bench", "messages": [message] * count}).encode()


def _row(name: str, raw: bytes, shape: Any, iterations: int, repeat: int) -> str:
    parsed = json.loads(raw)

    def time_us(run: Any) -> float:
        return best_ns(run, iterations, repeat) / 1000

    plain = time_us(lambda: json.loads(raw))
    ours = time_us(lambda: loads_object(raw))
    hook = time_us(lambda: json.loads(raw, object_pairs_hook=_checked_pairs))
    check = time_us(lambda: check_request(shape, parsed))
    return f"| {name} | {len(raw):,} | {plain:.1f} | {ours:.1f} | {hook:.1f} | {check:.2f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    bodies = {
        "small chat request": payloads.client_request(OPENAI, MODELS[(OPENAI, "json")], False),
        "agent turn (60 messages, 12 tools)": _agent_turn(60),
        "1 MB conversation": _long_conversation(1 << 20),
    }
    shape = FORMATS["openai-chat"].request_shape
    print("| body | bytes | json.loads µs | loads_object µs | pairs hook µs | check µs |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, raw in bodies.items():
        print(
            _row(
                name,
                raw,
                shape,
                max(10, args.iterations * 100 // max(100, len(raw) // 100)),
                args.repeat,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
