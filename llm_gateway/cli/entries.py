"""The list-of-entries sections of the config (``gateway_keys``, ``upstream_accounts``).

Both are lists of mappings with an ``id`` and a ``name``; ``Entries`` finds one
by either (``resolve_id`` turns what the user typed into the id before a
command runs), keeps names unique, and carries out the actions that are the
same for both (enable, disable, remove), each as one locked read-modify-write
of the file. Ids are matched first: a name never hides another entry's id.
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

    def _entries(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in document.get(self.section) or [] if isinstance(e, dict)]

    def resolve_id(self, document: dict[str, Any], ref: str, ctx: Context) -> str:
        """The id of the entry whose id, or else whose name, is ``ref``."""
        entries = self._entries(document)
        if any(entry.get("id") == ref for entry in entries):
            return ref
        named = [str(entry.get("id")) for entry in entries if entry.get("name") == ref]
        if len(named) == 1:
            return named[0]
        if named:
            raise CliError(
                f"{len(named)} {self.noun}s are named {ref!r} ({', '.join(named)}): "
                "give the id instead"
            )
        listing = ctx.command(f"{self.command} list")
        raise CliError(f"no {self.noun} with id or name {ref!r} (see '{listing}')")

    def find(self, document: dict[str, Any], entry_id: str, ctx: Context) -> dict[str, Any]:
        """The entry named by ``entry_id`` (an id, or a unique name)."""
        entry_id = self.resolve_id(document, entry_id, ctx)
        return next(e for e in self._entries(document) if e.get("id") == entry_id)

    def check_name(self, document: dict[str, Any], name: str, own_id: str | None) -> None:
        """Refuse a name that is empty, or already names (or is the id of) another entry."""
        if not name.strip():
            raise CliError("the name is empty")
        for entry in self._entries(document):
            if entry.get("id") == own_id:
                continue
            if entry.get("name") == name:
                raise CliError(
                    f"the name {name!r} is taken by {self.noun} {entry.get('id')}: "
                    "names are unique, choose another"
                )
            if entry.get("id") == name:
                raise CliError(f"{name!r} is the id of another {self.noun}: choose another name")

    def set_enabled(
        self,
        args: argparse.Namespace,
        ctx: Context,
        enabled: bool,
        view: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> int:
        def mutate(document: dict[str, Any]) -> dict[str, Any]:
            entry = self.find(document, args.id, ctx)
            entry["enabled"] = enabled
            return dict(entry)

        entry = ctx.store.update(mutate)
        if args.json:
            ctx.json(view(entry))
        else:
            state = "enabled" if enabled else "disabled"
            ctx.out(f"{self.noun.capitalize()} {entry['id']} {state}.")
        return 0

    def remove(self, args: argparse.Namespace, ctx: Context) -> int:
        def mutate(document: dict[str, Any]) -> str:
            entry = self.find(document, args.id, ctx)
            document[self.section].remove(entry)
            return str(entry["id"])

        entry_id = ctx.store.update(mutate)
        if args.json:
            ctx.json({"id": entry_id, "removed": True})
        else:
            ctx.out(f"{self.noun.capitalize()} {entry_id} removed.")
        return 0
