"""``llm-gateway server start|status``."""

from __future__ import annotations

import argparse

from ..server.workers import worker_count
from .context import Context
from .status_cmd import cmd_status

__all__ = ["register"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a port is a number from 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is a number from 0 to 65535")
    return port


def _workers(text: str) -> int:
    try:
        return worker_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError("workers is a positive number or 'auto'") from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("server", help="run the gateway")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    start = sub.add_parser("start", help="run the gateway in the foreground")
    start.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    start.add_argument("--port", type=_port, help="port to listen on (default from config: 3847)")
    start.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); 'auto' = one per core (default 1)",
    )
    start.set_defaults(handler=cmd_start)

    status = sub.add_parser("status", help="does a gateway answer on the configured address")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)


def cmd_start(args: argparse.Namespace, ctx: Context) -> int:
    from ..server.runtime import serve_forever

    return serve_forever(
        ctx.store, ctx.environ, host=args.host, port=args.port, err=ctx.err, workers=args.workers
    )
