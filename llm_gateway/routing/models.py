"""Model names: aliases, model maps and fallbacks, resolved without I/O.

Theory of operation: a name table (``model_aliases``, an account's
``model_map``, ``fallbacks``) is a list of (pattern, value) pairs. A pattern
without wildcards is an exact name; one with ``*``, ``?`` or ``[`` is a glob
(``fnmatch`` rules, case-sensitive). ``lookup`` tries the exact names first,
then the globs in the order written: the first match wins. Claude Code's model
names change with every release (``claude-haiku-4-5-20251001``), so a glob such
as ``claude-haiku-*`` keeps a mapping valid across them.

``route_models`` is the list of models one request may be served by, in
order: the requested name through the gateway's aliases, then the fallbacks
configured for it (each through the aliases as well), without repeats. The
client always sees the name it asked for; these names only choose accounts.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["is_glob", "lookup", "route_models"]

_V = TypeVar("_V")
_WILDCARDS = frozenset("*?[")


def is_glob(name: str) -> bool:
    """True if ``name`` holds a wildcard (and so names no single model)."""
    return not _WILDCARDS.isdisjoint(name)


def lookup(table: Sequence[tuple[str, _V]], name: str) -> _V | None:
    """The value for ``name``: an exact entry first, else the first matching glob."""
    for pattern, value in table:
        if pattern == name and not is_glob(pattern):
            return value
    for pattern, value in table:
        if is_glob(pattern) and fnmatch.fnmatchcase(name, pattern):
            return value
    return None


def route_models(
    aliases: Sequence[tuple[str, str]],
    fallbacks: Sequence[tuple[str, tuple[str, ...]]],
    requested: str,
) -> tuple[str, ...]:
    """The models to try for ``requested``, first the aliased name, then its fallbacks."""
    first = lookup(aliases, requested) or requested
    later = lookup(fallbacks, requested)
    if later is None:
        later = lookup(fallbacks, first) or ()
    chain: dict[str, None] = {first: None}
    for name in later:
        chain.setdefault(lookup(aliases, name) or name, None)
    return tuple(chain)
