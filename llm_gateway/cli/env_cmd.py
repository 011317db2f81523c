"""``llm-gateway env ...``: outbound proxy settings for upstream requests.

Proxy URLs may carry credentials (``http://user:pass@proxy:3128``); they are
shown with the password masked (a lone user name too: it may be a token).
``env list`` shows the proxy variables of the environment beside the config's,
and which of the two the gateway uses: the config's value where one is set,
else the environment's (lower-case name first), as ``ProxySettings.from_sources``
decides.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from ..upstream.proxy import ProxySettings
from .context import CliError, Context, print_table

__all__ = ["register"]

NAMES = ("http_proxy", "https_proxy", "no_proxy")


def masked_url(value: str | None) -> str | None:
    """``http://user:secret@host:3128`` -> ``http://user:****@host:3128``;
    ``http://token@host`` -> ``http://****@host``; a bare ``user:pw@host:3128`` too."""
    if not value or "@" not in value:
        return value
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    # everything up to the last "@" is credentials: a password may hold "/" or "@"
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    hidden = f"{user}:****" if colon else "****"
    return f"{scheme}{sep}{hidden}@{host}"


def _name(text: str) -> str:
    name = text.replace("-", "_").lower()
    if name not in NAMES:
        raise argparse.ArgumentTypeError(f"the name is one of {', '.join(NAMES)}")
    return name


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("env", help="outbound proxy settings")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="show all settings")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)

    set_ = sub.add_parser("set", help="set one or more settings")
    set_.add_argument("--http-proxy", metavar="URL")
    set_.add_argument("--https-proxy", metavar="URL")
    set_.add_argument("--no-proxy", metavar="LIST", help="comma-separated hosts, domains, CIDRs")
    set_.add_argument("--json", action="store_true", help="machine-readable output")
    set_.set_defaults(handler=cmd_set)

    show = sub.add_parser("show", help="show one setting")
    show.add_argument("--name", type=_name, required=True, help=", ".join(NAMES))
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)

    unset = sub.add_parser("unset", help="clear one setting")
    unset.add_argument("--name", type=_name, required=True, help=", ".join(NAMES))
    unset.add_argument("--json", action="store_true", help="machine-readable output")
    unset.set_defaults(handler=cmd_unset)


def _views(ctx: Context) -> dict[str, str | None]:
    env = ctx.store.load().environment
    return {name: masked_url(value) for name, value in env.as_mapping().items()}


def _from_environment(ctx: Context, name: str) -> tuple[str, str] | None:
    """The variable (lower-case name first) and its value, as the gateway reads them."""
    for variable in (name, name.upper()):
        value = ctx.environ.get(variable)
        if value:
            return variable, value
    return None


def _listing(ctx: Context) -> dict[str, dict[str, str | None]]:
    config = ctx.store.load().environment.as_mapping()
    effective = ProxySettings.from_sources(config, ctx.environ)
    rows: dict[str, dict[str, str | None]] = {}
    for name in NAMES:
        found = _from_environment(ctx, name)
        if config.get(name) is not None:
            source = "config"
        elif found is not None:
            source = "environment"
        else:
            source = None
        rows[name] = {
            "config": masked_url(config.get(name)),
            "environment": masked_url(found[1]) if found else None,
            "variable": found[0] if found else None,
            "in_effect": masked_url(getattr(effective, name)),
            "source": source,
        }
    return rows


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = _listing(ctx)
    if args.json:
        ctx.json(rows)
        return 0
    table = []
    for name, row in rows.items():
        environment = f"{row['variable']}={row['environment']}" if row["variable"] else "-"
        used = f"{row['source']}" if row["source"] else "none"
        config = "(empty: no proxy)" if row["config"] == "" else row["config"] or "-"
        table.append([name, config, environment, used])
    print_table(ctx, ["name", "config", "environment", "used"], table)
    ctx.out(
        "The gateway uses the config's value where one is set, else the environment's; "
        "the environment shown is this shell's (a gateway started elsewhere has its own)."
    )
    return 0


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    value = _views(ctx)[args.name]
    if args.json:
        ctx.json({"name": args.name, "value": value})
    else:
        ctx.out(value or "-")
    return 0


def _validate_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{name} must be an http:// or https:// URL with a host")


def cmd_set(args: argparse.Namespace, ctx: Context) -> int:
    values = {"http_proxy": args.http_proxy, "https_proxy": args.https_proxy}
    for name, value in values.items():
        if value:
            _validate_url(name, value)
    changes = {k: v for k, v in {**values, "no_proxy": args.no_proxy}.items() if v is not None}
    if not changes:
        raise CliError("nothing to set: give --http-proxy, --https-proxy or --no-proxy")

    def mutate(document: dict[str, Any]) -> None:
        section = document.get("environment") or {}
        section.update(changes)
        document["environment"] = section

    ctx.store.update(mutate)
    return cmd_list(args, ctx)


def cmd_unset(args: argparse.Namespace, ctx: Context) -> int:
    def mutate(document: dict[str, Any]) -> None:
        section = document.get("environment") or {}
        section[args.name] = None
        document["environment"] = section

    ctx.store.update(mutate)
    if args.json:
        ctx.json({"name": args.name, "value": None})
    else:
        ctx.out(f"{args.name} cleared.")
    return 0
