"""``llm-gateway apikey ...``: the gateway's own API keys.

A new key is printed once and stored only as its hash; listings show ids,
names and settings, never a key or a hash.
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

from ..config.schema import PERMISSIONS
from ..crypto.gateway_keys import generate_key, hash_key
from .context import CliError, Context, add_actions, parse_csv, print_table
from .entries import Entries

__all__ = ["register"]

ENTRIES = Entries("gateway_keys", "gateway key", "apikey")

_DURATION = re.compile(r"^(\d+)([dhm])$")


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _permissions(text: str) -> list[str]:
    items = parse_csv(text)
    bad = [p for p in items if p not in PERMISSIONS]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"permissions are a comma-separated list of {', '.join(PERMISSIONS)}"
        )
    return items


def _expiry(text: str) -> str:
    """``30d``/``12h``/``90m`` from now, an ISO date or datetime; ``never`` gives ``""``."""
    if text == "never":
        return ""
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(minutes=amount)
        )
        moment = datetime.now(timezone.utc) + delta
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                "expiry is a duration (30d, 12h, 90m), an ISO date or time, or 'never'"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(text: str) -> int:
    """A positive limit; ``none`` (or 0) gives 0, meaning unlimited."""
    if text in ("none", "0"):
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, or 'none'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a positive number, or 'none'")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("apikey", help="manage the gateway's own API keys")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def settings(p: argparse.ArgumentParser, *, adding: bool) -> None:
        p.add_argument("--name", required=adding, help="a label for the key")
        p.add_argument(
            "--permissions",
            type=_permissions,
            help="comma-separated: read (GET endpoints), write (inference), admin (default: read,write)",
        )
        p.add_argument("--models", help="comma-separated glob patterns of allowed models")
        p.add_argument("--expires", type=_expiry, help="30d, 12h, an ISO date, or never")
        p.add_argument("--rpm", type=_positive, help="requests per minute (none: unlimited)")
        p.add_argument("--tpm", type=_positive, help="tokens per minute (none: unlimited)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    adding = functools.partial(settings, adding=True)
    updating = functools.partial(settings, adding=False)
    add_actions(
        sub,
        (
            ("add", "create a key (printed once)", cmd_add, False, adding),
            ("list", "list keys", cmd_list, False, None),
            ("show", "show one key's settings", cmd_show, True, None),
            ("update", "change a key's settings", cmd_update, True, updating),
            ("remove", "delete a key", cmd_remove, True, None),
            ("disable", "refuse a key without deleting it", cmd_disable, True, None),
            ("enable", "accept a disabled key again", cmd_enable, True, None),
        ),
    )


def public_view(entry: dict[str, Any]) -> dict[str, Any]:
    """A key's entry without its hash."""
    return {
        "id": entry["id"],
        "name": entry["name"],
        "permissions": list(entry.get("permissions") or ["read", "write"]),
        "enabled": entry.get("enabled", True),
        "created_at": entry.get("created_at", ""),
        "expires_at": entry.get("expires_at"),
        "models": list(entry.get("models") or []),
        "rpm": entry.get("rpm"),
        "tpm": entry.get("tpm"),
    }


def _apply(entry: dict[str, Any], args: argparse.Namespace) -> None:
    if args.name is not None:
        entry["name"] = args.name
    if args.permissions is not None:
        entry["permissions"] = args.permissions
    if args.models is not None:
        entry["models"] = parse_csv(args.models)
    if args.expires is not None:
        entry["expires_at"] = args.expires or None
    for field in ("rpm", "tpm"):
        value = getattr(args, field)
        if value is not None:
            entry[field] = value or None


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    key_id, key = generate_key()
    entry: dict[str, Any] = {
        "id": key_id,
        "name": args.name,
        "hash": hash_key(key),
        "permissions": args.permissions or ["read", "write"],
        "enabled": True,
        "created_at": now_iso(),
        "expires_at": args.expires or None,
        "models": parse_csv(args.models) if args.models else [],
        "rpm": args.rpm or None,
        "tpm": args.tpm or None,
    }

    def mutate(document: dict[str, Any]) -> None:
        ENTRIES.check_name(document, args.name, None)
        document.setdefault("gateway_keys", []).append(entry)

    ctx.store.update(mutate)
    if args.json:
        ctx.json({**public_view(entry), "key": key})
    else:
        ctx.out(f"Created gateway key {key_id} ({args.name}).")
        ctx.out(f"Key: {key}")
        ctx.out("Store it now: it is shown only this once.")
    return 0


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    document_keys = [public_view(asdict(k)) for k in ctx.store.load().gateway_keys]
    if args.json:
        ctx.json(document_keys)
        return 0
    if not document_keys:
        ctx.out("No gateway keys. Create one with: " + ctx.command("apikey add --name NAME"))
        return 0
    rows = [
        [
            k["id"],
            k["name"],
            ",".join(k["permissions"]),
            "enabled" if k["enabled"] else "disabled",
            k["expires_at"] or "never",
            ",".join(k["models"]) or "*",
            _limits(k),
        ]
        for k in document_keys
    ]
    print_table(ctx, ["id", "name", "permissions", "state", "expires", "models", "limits"], rows)
    return 0


def _limits(view: dict[str, Any]) -> str:
    parts = [f"{view[f]} {f}" for f in ("rpm", "tpm") if view.get(f)]
    return ", ".join(parts) or "-"


def _print_one(ctx: Context, view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        ctx.json(view)
        return
    for name, value in view.items():
        if isinstance(value, list):
            value = ",".join(value) or "-"
        ctx.out(f"{name + ':':13}{'-' if value is None else value}")


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    key = ctx.store.load().key_by_id(args.id)
    if key is None:
        raise CliError(f"no gateway key with id {args.id!r} (see '{ctx.command('apikey list')}')")
    _print_one(ctx, public_view(asdict(key)), args.json)
    return 0


def cmd_update(args: argparse.Namespace, ctx: Context) -> int:
    def mutate(document: dict[str, Any]) -> dict[str, Any]:
        entry = ENTRIES.find(document, args.id, ctx)
        before = copy.deepcopy(entry)
        if args.name is not None:
            ENTRIES.check_name(document, args.name, entry["id"])
        _apply(entry, args)
        if entry == before:
            raise CliError(f"nothing changed: gateway key {entry['id']} already has these settings")
        return public_view(entry)

    view = ctx.store.update(mutate)
    _print_one(ctx, view, args.json)
    return 0


def cmd_enable(args: argparse.Namespace, ctx: Context) -> int:
    return ENTRIES.set_enabled(args, ctx, True, public_view)


def cmd_disable(args: argparse.Namespace, ctx: Context) -> int:
    return ENTRIES.set_enabled(args, ctx, False, public_view)


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    return ENTRIES.remove(args, ctx)
