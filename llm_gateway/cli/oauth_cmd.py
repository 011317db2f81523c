"""``llm-gateway oauth ...``: OAuth upstream accounts (Claude Code subscriptions).

The flow itself arrives with the OAuth work; until then every action says so
plainly and exits 1.
"""

from __future__ import annotations

import argparse

from .context import CliError, Context

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("oauth", help="authorise OAuth upstream accounts")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (
        ("start", "run the authorisation flow for an account"),
        ("status", "show an account's token state"),
        ("refresh", "refresh an account's access token now"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(handler=cmd_unavailable)


def cmd_unavailable(args: argparse.Namespace, ctx: Context) -> int:
    raise CliError(
        f"'oauth {args.action}' is not available in this version: OAuth accounts can be "
        "added, but the authorisation flow is not implemented yet"
    )
