"""The machinery of a table in memory shared by forked workers.

Theory of operation: the supervising parent creates an unlinked temporary
file (in ``/dev/shm`` when there is one) before forking, and every worker,
including one started again after a crash, inherits its descriptor and maps
it. Writers take an exclusive ``fcntl.lockf`` lock on the whole file; POSIX
record locks belong to a process and the kernel releases them when it dies,
so a worker killed with SIGKILL never leaves a table locked. The lock is
taken without blocking the event loop (tried with ``LOCK_NB``, other tasks
running in between), because a holder the scheduler paused on a busy machine
would otherwise stall every request of the waiting worker.

A table is fixed-size slots, each a body (``struct`` layout, starting with a
16-byte digest of the slot's key) and a CRC-32 of it. A slot torn by a
worker killed in the middle of writing it, or read without the lock while
another process writes it, fails the check and reads as absent.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import functools
import hashlib
import mmap
import os
import struct
import tempfile
import zlib
from typing import IO, Any

from ..errors import ServiceUnavailable

__all__ = [
    "EMPTY_DIGEST",
    "LOCK_POLL",
    "digest",
    "lock",
    "new_file",
    "read_slot",
    "shared_map",
    "slot_size",
    "try_lock",
    "unlock",
    "write_slot",
]

_CHECK = struct.Struct("<I4x")
EMPTY_DIGEST = bytes(16)
#: tries of a busy lock, letting other tasks run in between, before polling it
_QUICK_TRIES = 20
#: seconds between tries of a lock still busy after the quick tries
LOCK_POLL = 0.001
_SHM = "/dev/shm"


def new_file(size: int) -> IO[bytes]:
    """An unlinked file of ``size`` zero bytes; create it in the parent, before forking."""
    directory = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
    # open for the life of the table: the workers inherit its descriptor
    file = tempfile.TemporaryFile(prefix="llm-gateway-state-", dir=directory)  # noqa: SIM115
    os.ftruncate(file.fileno(), size)
    return file


def shared_map(file: IO[bytes], size: int) -> mmap.mmap:
    return mmap.mmap(file.fileno(), size, mmap.MAP_SHARED)


def slot_size(body: struct.Struct) -> int:
    return body.size + _CHECK.size


async def lock(fd: int, wait: float, what: str) -> None:
    """Take the file's lock without blocking the event loop; a 503 after ``wait`` s."""
    loop = asyncio.get_running_loop()
    tries = 0
    deadline = loop.time() + wait
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        tries += 1
        if tries <= _QUICK_TRIES:
            await asyncio.sleep(0)
            continue
        if loop.time() >= deadline:
            raise ServiceUnavailable(
                f"the {what} shared by the workers stayed locked for {wait:g} s"
            )
        await asyncio.sleep(LOCK_POLL)


def try_lock(fd: int) -> bool:
    """Take the file's lock if it is free at once."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        return False
    return True


def unlock(fd: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN)


def read_slot(table: mmap.mmap, offset: int, body: struct.Struct) -> tuple[Any, ...] | None:
    """The slot's fields (digest first); None when it is empty or torn."""
    raw = table[offset : offset + body.size]
    (check,) = _CHECK.unpack_from(table, offset + body.size)
    if check == 0 and raw == bytes(body.size):
        return None
    if zlib.crc32(raw) != check:
        return None
    return body.unpack(raw)


def write_slot(
    table: mmap.mmap, offset: int, body: struct.Struct, fields: tuple[Any, ...] | None
) -> None:
    """Write the slot's fields with their checksum; None empties it."""
    if fields is None:
        table[offset : offset + slot_size(body)] = bytes(slot_size(body))
        return
    raw = body.pack(*fields)
    table[offset : offset + slot_size(body)] = raw + _CHECK.pack(zlib.crc32(raw))


@functools.lru_cache(maxsize=4096)
def digest(key: str) -> bytes:
    """A key's 16-byte digest, never the empty slot's."""
    value = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
    return value if value != EMPTY_DIGEST else b"\x01" + value[1:]
