"""``llm-gateway server start|status``."""

from __future__ import annotations

import argparse

from ..server.workers import worker_count
from .context import Context
from .status_cmd import add_status_options, cmd_status

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
    # the server itself may write the file (rotated OAuth tokens): nothing to wait for
    start.set_defaults(handler=cmd_start, waits_for_gateway=False)

    status = sub.add_parser("status", help="what the running gateway serves; exit 1 if down")
    add_status_options(status)
    status.set_defaults(handler=cmd_status)


def cmd_start(args: argparse.Namespace, ctx: Context) -> int:
    from ..runtime import serve_forever

    return serve_forever(
        ctx.store,
        ctx.environ,
        host=args.host,
        port=args.port,
        err=ctx.err,
        workers=args.workers,
        program=ctx.program,
    )
