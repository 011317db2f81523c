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

Across hosts a file lock is not enough: each host has its own file. A
``TokenShare`` (the ``state.backend: redis`` one is
``state/redis_tokens.py``) then holds the account's lease and its newest
tokens, sealed exactly as in the file. ``hold`` takes this host's file lock,
then the share's lease; the lease carries a *fence*, a number that grows
with every lease given out, and the share accepts new tokens only from a
holder whose fence is not older than the newest lease or the newest tokens,
so a holder whose lease lapsed (a paused process) cannot overwrite newer
tokens. When the share is unreachable, ``hold`` yields None and the file
lock alone serialises this host's refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import OAuthError

__all__ = [
    "LOCK_WAIT",
    "POLL",
    "Lease",
    "SharedTokens",
    "TokenShare",
    "hold",
    "lock_path",
    "refresh_lock",
]

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


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to refresh ``account_id``, numbered by its ``fence``."""

    account_id: str
    fence: int


@dataclass(frozen=True, slots=True)
class SharedTokens:
    """An account's tokens as a share keeps them: sealed as in the file."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    last_refresh: float | None = None


class TokenShare(Protocol):
    """Refresh leases and the newest tokens, shared by gateway instances on many hosts."""

    async def acquire(self, account_id: str, wait: float) -> Lease | None:
        """The account's lease (waiting up to ``wait`` s); None when the share is
        unreachable; ``OAuthError`` when another holder kept it all that time."""
        ...

    async def release(self, lease: Lease) -> None: ...

    async def read(self, account_id: str) -> SharedTokens | None:
        """The newest tokens published; None when there are none or the share is unreachable."""
        ...

    async def publish(self, lease: Lease, tokens: SharedTokens) -> bool:
        """Store ``tokens``; False when a newer lease or newer tokens fenced this one out."""
        ...


@contextlib.asynccontextmanager
async def hold(
    home: Path, account_id: str, *, wait: float = LOCK_WAIT, share: TokenShare | None = None
) -> AsyncIterator[Lease | None]:
    """This host's file lock, then the share's lease (None: no share, or unreachable)."""
    async with refresh_lock(home, account_id, wait=wait):
        lease = await share.acquire(account_id, wait) if share is not None else None
        try:
            yield lease
        finally:
            if share is not None and lease is not None:
                await share.release(lease)
