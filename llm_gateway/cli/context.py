"""What every subcommand handler receives: the store, the streams, the environment.

Handlers are plain functions ``(args, ctx) -> int``; they never call
``sys.exit`` and never read ``sys.stdin``/``os.environ`` directly, so tests can
drive them in-process with fakes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..config.store import ConfigStore

__all__ = ["CliError", "Context", "Handler", "add_actions", "parse_csv", "print_table"]


class CliError(Exception):
    """A failure the user caused or must fix; printed as ``error: ...``, exit 1."""


@dataclass
class Context:
    store: ConfigStore
    environ: Mapping[str, str]
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    #: the words that start the CLI, as the user typed them (for hints)
    program: str = "llm-gateway"

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def command(self, text: str) -> str:
        """``text`` as a command to paste: ``llm-gateway upstream list``, ``python3 llm-gateway.pyz ...``."""
        return f"{self.program} {text}"

    def json(self, value: Any) -> None:
        self.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


Handler = Callable[[Any, Context], int]


def add_actions(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    actions: Sequence[
        tuple[str, str, Handler, bool, Callable[[argparse.ArgumentParser], None] | None]
    ],
) -> None:
    """Register ``(name, help, handler, takes_id, configure)`` actions, each with ``--json``.

    ``configure`` adds the action's own options; it is responsible for ``--json``
    when it is given (so a shared settings builder can include it).
    """
    for name, text, handler, takes_id, configure in actions:
        parser = sub.add_parser(name, help=text)
        if takes_id:
            parser.add_argument("id")
        if configure is not None:
            configure(parser)
        else:
            parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(handler=handler)


def parse_csv(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def print_table(ctx: Context, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    ctx.out("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        ctx.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
