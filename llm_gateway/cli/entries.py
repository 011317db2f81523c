"""The list-of-entries sections of the config (``gateway_keys``, ``upstream_accounts``).

Both are lists of mappings with an ``id``; ``Entries`` finds one, and carries
out the actions that are the same for both (enable, disable, remove), each as
one locked read-modify-write of the file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .context import CliError, Context

__all__ = ["Entries"]


@dataclass(frozen=True)
class Entries:
    section: str  # the config key, e.g. "gateway_keys"
    noun: str  # for messages, e.g. "gateway key"
    command: str  # the CLI command that lists them, e.g. "apikey"

    def find(self, document: dict[str, Any], entry_id: str) -> dict[str, Any]:
        for entry in document.get(self.section) or []:
            if isinstance(entry, dict) and entry.get("id") == entry_id:
                return entry
        raise CliError(
            f"no {self.noun} with id {entry_id!r} (see 'llm-gateway {self.command} list')"
        )

    def set_enabled(
        self,
        args: argparse.Namespace,
        ctx: Context,
        enabled: bool,
        view: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> int:
        def mutate(document: dict[str, Any]) -> dict[str, Any]:
            entry = self.find(document, args.id)
            entry["enabled"] = enabled
            return dict(entry)

        entry = ctx.store.update(mutate)
        if args.json:
            ctx.json(view(entry))
        else:
            state = "enabled" if enabled else "disabled"
            ctx.out(f"{self.noun.capitalize()} {args.id} {state}.")
        return 0

    def remove(self, args: argparse.Namespace, ctx: Context) -> int:
        def mutate(document: dict[str, Any]) -> None:
            document[self.section].remove(self.find(document, args.id))

        ctx.store.update(mutate)
        if args.json:
            ctx.json({"id": args.id, "removed": True})
        else:
            ctx.out(f"{self.noun.capitalize()} {args.id} removed.")
        return 0
