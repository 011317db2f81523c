"""The ``llm-gateway`` entry point: build the argparse tree, dispatch, map errors to exit codes.

Exit codes: 0 success, 1 failure (``error: ...`` on stderr), 2 usage errors
(argparse's own). Each subcommand lives in its own module with a
``register(subparsers)`` function; this module only lists them. A command
that changed the config file returns once the running gateway has loaded it
(``running.wait_for_load``), unless its parser sets ``waits_for_gateway``
to False.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence

from .. import __version__
from ..config.store import ConfigStore, resolve_config_path
from ..errors import ConfigError
from . import apikey_cmd, env_cmd, oauth_cmd, server_cmd, status_cmd, upstream_cmd
from .context import CliError, Context
from .invocation import invoked_as
from .running import wait_for_load

__all__ = ["build_parser", "main"]

COMMANDS = (server_cmd, apikey_cmd, upstream_cmd, oauth_cmd, env_cmd, status_cmd)
#: the commands whose ID argument names a gateway key or an upstream account (by id or name)
NAMED_BY_ID = {
    "apikey": apikey_cmd.ENTRIES,
    "upstream": upstream_cmd.ENTRIES,
    "oauth": upstream_cmd.ENTRIES,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-gateway",
        description="An LLM API gateway: one endpoint for OpenAI and Anthropic clients.",
    )
    parser.add_argument("--version", action="version", version=f"llm-gateway {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $LLM_GATEWAY_HOME/config.yaml or ~/.llm-gateway/config.yaml)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, context: Context | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if context is None:
        path = resolve_config_path(args.config, os.environ)
        context = Context(store=ConfigStore(path), environ=os.environ, program=_program())
    elif args.config:
        context.store = ConfigStore(resolve_config_path(args.config, context.environ))
    try:
        entries = NAMED_BY_ID.get(args.command)
        if entries is not None and getattr(args, "id", None) is not None:
            args.id = entries.resolve_id(context.store.read_document(), args.id, context)
        code = int(args.handler(args, context))
        if context.store.writes and getattr(args, "waits_for_gateway", True):
            wait_for_load(context)
        return code
    except (CliError, ConfigError) as exc:
        context.err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def _program() -> str:
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    orig_argv = getattr(sys, "orig_argv", sys.argv)
    return invoked_as(sys.argv, orig_argv, package_dir, shutil.which)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
