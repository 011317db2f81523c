"""Several gateway processes on one port: ``server start --workers N``.

Theory of operation: the parent forks N workers and then only supervises.
Each worker runs a complete gateway (its own event loop, connection pool,
configuration watcher) and binds the same address with ``SO_REUSEPORT``, so
the kernel spreads incoming connections across them. For port 0 the parent
first reserves a free port with a bound, non-listening ``SO_REUSEPORT``
socket, which the workers then share.

SIGINT and SIGTERM are forwarded to every worker, which shuts down gracefully;
the parent exits when all have. A worker that dies on its own is started
again, unless workers keep dying within seconds of starting (then the parent
stops them all and fails). What each worker keeps to itself: account health,
pooled connections, and the random prefix of its request ids (chosen again
in each worker, so ids never repeat across workers). Configuration and OAuth
tokens are shared through the config file and its locks; per-key rate-limit
buckets through a shared table that ``runtime.py`` creates before the
fork (so a worker started again inherits it too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable

from .tcp import new_request_id_prefix

__all__ = ["reserve_port", "run_workers", "worker_count"]

_CRASH_WINDOW = 5.0
_MAX_QUICK_CRASHES = 5


def worker_count(text: str) -> int:
    """``auto`` is the number of usable cores; otherwise a positive number."""
    if text == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    count = int(text)
    if count < 1:
        raise ValueError("workers must be at least 1")
    return count


def reserve_port(host: str) -> tuple[socket.socket, int]:
    """A free port, held by a bound (not listening) SO_REUSEPORT socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host or "0.0.0.0", 0))
    return sock, int(sock.getsockname()[1])


def run_workers(count: int, serve: Callable[[int], int]) -> int:
    """Fork ``count`` workers running ``serve(index)``; supervise until they all stop."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    started: dict[int, float] = {}
    quick_crashes = 0

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            new_request_id_prefix()  # the parent's was inherited: ids must not repeat
            code = 1
            try:
                code = serve(index)
            finally:
                os._exit(code)
        children[pid] = index
        started[index] = time.monotonic()

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        for index in range(count):
            spawn(index)
        while children:
            pid, _ = os.wait()
            if pid not in children:
                continue
            index = children.pop(pid)
            if stopping:
                continue
            if time.monotonic() - started[index] < _CRASH_WINDOW:
                quick_crashes += 1
            if quick_crashes >= _MAX_QUICK_CRASHES:
                failed = True
                forward(signal.SIGTERM, None)
                continue
            spawn(index)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if failed else 0
