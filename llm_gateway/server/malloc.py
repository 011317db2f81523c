"""Large blocks of memory go back to the system when freed.

Theory of operation: glibc serves allocations of 128 KiB and more with their
own mappings, unmapped when freed, but it raises that threshold to the size
of each such block freed (up to 32 MiB). After one large request the
gateway's next multi-megabyte bodies, parsed copies and encoded bodies then
come from the heap, and the heap keeps what they leave behind: a converted
30 MB request left about 120 MiB allocated for good. Fixing the threshold
(``mallopt(M_MMAP_THRESHOLD, 128 KiB)``, which also turns the adjustment off)
keeps large blocks in their own mappings. Elsewhere (musl, macOS) there is
no ``mallopt`` and nothing is done.
"""

from __future__ import annotations

import logging

__all__ = ["return_large_blocks"]

log = logging.getLogger("llm_gateway.server")

_M_MMAP_THRESHOLD = -3
_THRESHOLD = 128 * 1024


def return_large_blocks() -> bool:
    """Ask the C allocator to unmap large blocks when freed; True if it agreed."""
    try:
        import ctypes  # not in every Python build
    except ImportError:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    agreed = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    if not agreed:
        log.debug("the C allocator kept its own threshold for large blocks")
    return agreed
