"""A cross-process lock per account, held while its tokens are refreshed.

Theory of operation: refresh tokens rotate, so two processes (server workers,
or the server and ``llm-gateway oauth refresh``) that refresh the same account
at once would spend the same refresh token twice, and the loser would see
``invalid_grant``. Inside one process ``TokenManager`` already lets only one
refresh per account run; across processes this lock does: an exclusive
``flock`` on ``<home>/.oauth-<hash of the account id>.lock``. It is taken
without blocking the event loop (``LOCK_NB``, retried every ``POLL`` seconds
up to a deadline), so a cancelled waiter simply stops trying, and it is
released by closing the descriptor, whatever happens inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from .errors import OAuthError

__all__ = ["LOCK_WAIT", "POLL", "lock_path", "refresh_lock"]

#: longest wait for another process's refresh (longer than its token request may take)
LOCK_WAIT = 90.0
POLL = 0.05


def lock_path(home: Path, account_id: str) -> Path:
    digest = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:16]
    return home / f".oauth-{digest}.lock"


@contextlib.asynccontextmanager
async def refresh_lock(
    home: Path, account_id: str, *, wait: float = LOCK_WAIT
) -> AsyncIterator[None]:
    """Hold the account's refresh lock for the body of the ``async with``."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path(home, account_id), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OAuthError(f"cannot create the refresh lock in {home}: {exc.strerror}") from None
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= deadline:
                    raise OAuthError(
                        f"another process has been refreshing upstream account {account_id} "
                        f"for more than {wait:g} s"
                    ) from None
                await asyncio.sleep(POLL)
        yield
    finally:
        os.close(fd)
